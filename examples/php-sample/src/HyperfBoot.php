<?php
// A Hyperf-equivalent loader: turns a generated config/autoload/server.php into the Swoole calls
// hyperf/server's Server::initServers makes (src/server/src/Server.php), step for step:
//   - sortServers: every SERVER_HTTP server is array_unshift'ed (so the LAST one listed becomes the
//     main server), websocket servers likewise, other types are appended;
//   - the first of the sorted list: new Swoole\Http\Server(host, port, mode, sock_type), callbacks
//     array_replace(defaults, config callbacks, server callbacks), then
//     ->set(array_replace(config settings, server settings));
//   - every other one: addlistener(host, port, sock_type), ->set(the same merge) only when it has
//     settings of its own, then its own callbacks;
//   - a server's `options` (Hyperf's Option object) never reach Swoole.
// Callbacks name Hyperf classes ([Class::class, 'method']); Hyperf takes them from its container.
// Here a resolver given by the caller maps them to the application's own handlers, so the same
// boot code serves the PHP sample and the test loader.
declare(strict_types=1);

namespace PodmeshSample;

require_once __DIR__ . '/HyperfStandins.php';

use Hyperf\Server\Event;
use Hyperf\Server\ServerInterface;
use RuntimeException;
use Swoole\Http\Server as SwooleHttpServer;
use Swoole\Server as SwooleServer;
use Swoole\Server\Port as SwoolePort;
use Swoole\WebSocket\Server as SwooleWebSocketServer;

/**
 * Maps a Hyperf callback to a PHP callable.
 * @phpstan-type Resolver callable(string $class, string $method, array $port, SwooleServer $server): callable
 */
final class HyperfBoot
{
    /** Hyperf's default callbacks when hyperf/framework is installed (Server::defaultCallbacks). */
    private const DEFAULT_CALLBACKS = [
        Event::ON_START => ['Hyperf\Framework\Bootstrap\StartCallback', 'onStart'],
        Event::ON_MANAGER_START => ['Hyperf\Framework\Bootstrap\ManagerStartCallback', 'onManagerStart'],
        Event::ON_WORKER_START => ['Hyperf\Framework\Bootstrap\WorkerStartCallback', 'onWorkerStart'],
        Event::ON_WORKER_STOP => ['Hyperf\Framework\Bootstrap\WorkerStopCallback', 'onWorkerStop'],
    ];

    /**
     * Loads the application's own classes as a Hyperf application does before it reads its config:
     * bin/hyperf.php requires Composer's autoloader, and the skeleton's composer.json maps `App\\`
     * to app/ (PSR-4). The generated config files read the service's App\\Podmesh\\Policy from there.
     */
    public static function autoloadApp(string $appRoot): void
    {
        spl_autoload_register(static function (string $class) use ($appRoot): void {
            if (! str_starts_with($class, 'App\\')) {
                return;
            }
            $file = $appRoot . '/app/' . str_replace('\\', '/', substr($class, 4)) . '.php';
            if (is_file($file)) {
                require $file;
            }
        });
    }

    /** Reads a config/autoload file the way Hyperf's config provider does: a PHP file returning an array. */
    public static function readConfig(string $file): array
    {
        if (! defined('BASE_PATH')) {
            throw new RuntimeException('BASE_PATH must be defined before the config is read (Hyperf defines it in bin/hyperf.php).');
        }
        if (! is_file($file)) {
            throw new RuntimeException("{$file} does not exist");
        }
        $config = require $file;
        if (! is_array($config)) {
            throw new RuntimeException("{$file} does not return an array");
        }
        return $config;
    }

    /**
     * The servers as Hyperf's ServerConfig/Port::build see them, in initServers' order.
     * @return list<array{name: string, type: int, host: string, port: int, sock_type: int, callbacks: array, settings: array}>
     */
    public static function sortedServers(array $config): array
    {
        if (empty($config['servers'])) {
            throw new RuntimeException('server.php has no servers (Hyperf\'s ServerConfig refuses this too)');
        }
        $sorted = [];
        $websocket = false;
        foreach ($config['servers'] as $raw) {
            $port = self::buildPort($raw);
            switch ($port['type']) {
                case ServerInterface::SERVER_HTTP:
                    if (! $websocket) {
                        array_unshift($sorted, $port);
                    } else {
                        $sorted[] = $port;
                    }
                    break;
                case ServerInterface::SERVER_WEBSOCKET:
                    $websocket = true;
                    array_unshift($sorted, $port);
                    break;
                default:
                    $sorted[] = $port;
            }
        }
        return $sorted;
    }

    /**
     * Creates the Swoole server with all listeners and callbacks; the caller starts it.
     * @param callable(string, string, array, SwooleServer): callable $resolve
     */
    public static function boot(array $config, callable $resolve): SwooleServer
    {
        $settings = $config['settings'] ?? [];
        $mode = $config['mode'] ?? SWOOLE_BASE;
        $server = null;
        foreach (self::sortedServers($config) as $port) {
            $callbacks = $port['callbacks'];
            if ($server === null) {
                $server = self::makeServer($port['type'], $port['host'], $port['port'], $mode, $port['sock_type']);
                $callbacks = array_replace(self::DEFAULT_CALLBACKS, $config['callbacks'] ?? [], $callbacks);
                self::register($server, $callbacks, $port, $server, $resolve);
                $server->set(array_replace($settings, $port['settings']));
            } else {
                $listener = $server->addlistener($port['host'], $port['port'], $port['sock_type']);
                if (! $listener instanceof SwoolePort) {
                    throw new RuntimeException("Failed to listen server port [{$port['host']}:{$port['port']}]");
                }
                $port['settings'] && $listener->set(array_replace($settings, $port['settings']));
                self::register($listener, $callbacks, $port, $server, $resolve);
            }
        }
        return $server;
    }

    /** Port::build with Port::filter: defaults for missing keys, SERVER_BASE without HTTP parsing. */
    private static function buildPort(array $raw): array
    {
        $type = (int) ($raw['type'] ?? ServerInterface::SERVER_HTTP);
        $settings = $raw['settings'] ?? [];
        if ($type === ServerInterface::SERVER_BASE) {
            $settings = array_merge(['open_http2_protocol' => false, 'open_http_protocol' => false], $settings);
        }
        return [
            'name' => (string) ($raw['name'] ?? 'http'),
            'type' => $type,
            'host' => (string) ($raw['host'] ?? '0.0.0.0'),
            'port' => (int) ($raw['port'] ?? 9501),
            'sock_type' => (int) ($raw['sock_type'] ?? SWOOLE_SOCK_TCP),
            'callbacks' => $raw['callbacks'] ?? [],
            'settings' => $settings,
        ];
    }

    private static function makeServer(int $type, string $host, int $port, int $mode, int $sockType): SwooleServer
    {
        return match ($type) {
            ServerInterface::SERVER_HTTP => new SwooleHttpServer($host, $port, $mode, $sockType),
            ServerInterface::SERVER_WEBSOCKET => new SwooleWebSocketServer($host, $port, $mode, $sockType),
            ServerInterface::SERVER_BASE => new SwooleServer($host, $port, $mode, $sockType),
            default => throw new RuntimeException('Server type is invalid.'),
        };
    }

    /** Server::registerSwooleEvents, with the resolver in place of Hyperf's container. */
    private static function register(SwooleServer|SwoolePort $target, array $callbacks, array $port, SwooleServer $server, callable $resolve): void
    {
        foreach ($callbacks as $event => $callback) {
            if (! Event::isSwooleEvent($event)) {
                continue;
            }
            if (is_array($callback)) {
                [$class, $method] = $callback;
                $callback = $resolve((string) $class, (string) $method, $port, $server);
            }
            $target->on($event, $callback);
        }
    }
}
