<?php
// The sample service's behaviour, beside the Node one (examples/mtls-sample/server.mjs): the same
// endpoints, policy and JSON log lines, on Swoole, configured only by the generated
// config/autoload files and the environment.
//
//   GET /health        200 {"status":"ok",...} when PostgreSQL (DB_*) and Redis (REDIS_*) answer,
//                      when the service has them; 503 with the reasons otherwise
//   GET /whoami        the caller's certificate CN and SPIFFE ID as the server saw them (mTLS port)
//   GET /call/<name>   GETs <callee>/health with the generated client options (mTLS port)
//
// On a port that verifies client certificates (ssl_verify_peer) Swoole has already refused
// callers without a certificate of the trusted CAs; this code adds what Swoole does not check:
// the CRL (403 and an mtls_handshake_failed line with reason CERT_REVOKED) and the policy (403 and
// mtls_authorization_denied): a certificate carrying a SPIFFE ID (its one spiffe:// URI SAN) must
// name an allowed SPIFFE ID, one without (issued before SPIFFE IDs) an allowed client CN. The
// service's own CN and SPIFFE ID are always allowed, for the generated health check, as in the
// Node sample.
declare(strict_types=1);

namespace PodmeshSample;

use RuntimeException;
use Swoole\Coroutine\Client as CoroutineClient;
use Swoole\Coroutine\Http\Client as CoroutineHttpClient;
use Swoole\Http\Request;
use Swoole\Http\Response;
use Swoole\Server as SwooleServer;
use Throwable;

final class Sample
{
    private readonly string $service;

    private readonly string $selfCn;

    /** @var array<string, true> */
    private readonly array $allowed;

    /** @var array<string, true> */
    private readonly array $allowedIds;

    private readonly ?Crl $crl;

    /** @var array<string, true> connections whose handshake was logged, by fd/connect time/port */
    private array $logged = [];

    /** @var array<int, array> the servers of server.php by port, as HyperfBoot passed them */
    private array $ports = [];

    /** The one request handler, shared by all servers as Hyperf shares its HttpServer instance. */
    private ?\Closure $onRequest = null;

    /**
     * @param array $policy mtls_policy.php's `mtls_policy`
     * @param array $client mtls_client.php's array (`http_client`, `mtls_services`)
     * @param array<string, string> $env the process environment
     * @param string $caFile the CA bundle of the mTLS port (its ssl_client_cert_file), to check CRL signatures
     */
    public function __construct(array $policy, private readonly array $client, private readonly array $env, string $caFile)
    {
        $this->service = ($env['SERVICE_NAME'] ?? '') !== '' ? $env['SERVICE_NAME'] : (string) ($policy['service'] ?? 'unknown');
        $this->selfCn = (string) ($policy['dns_name'] ?? $env['SERVICE_DNS_NAME'] ?? '');
        if ($this->selfCn === '') {
            $this->fail('mtls_policy.dns_name is not set');
        }
        $allowed = array_fill_keys(array_map('strval', $policy['allowed_clients'] ?? []), true);
        $allowed[$this->selfCn] = true; // the health check calls with the service's own client certificate
        $this->allowed = $allowed;
        $ids = array_fill_keys(array_map('strval', $policy['allowed_spiffe_ids'] ?? []), true);
        $self = (string) ($policy['spiffe_id'] ?? $env['SERVICE_SPIFFE_ID'] ?? '');
        if ($self !== '') {
            $ids[$self] = true;
        }
        $this->allowedIds = $ids;
        // Loaded once at boot, as a real service would: a new CRL takes effect on restart.
        $crlFile = (string) ($policy['crl_file'] ?? '');
        try {
            // The client CA, which signs the second CRL, travels in the service's own client chain.
            $chainFile = (string) ($client['http_client']['default_options']['cert'] ?? $env['MTLS_CLIENT_CERT_FILE'] ?? '');
            $this->crl = $crlFile === '' ? null : new Crl(self::readFile($crlFile), self::readFile($caFile), $chainFile === '' ? '' : self::readFile($chainFile));
        } catch (RuntimeException $e) {
            $this->fail("{$crlFile}: {$e->getMessage()}");
        }
    }

    /** The handlers for the Hyperf callbacks a generated server.php names (HyperfBoot's resolver). */
    public function resolve(string $class, string $method, array $port, SwooleServer $server): callable
    {
        return match ("{$class}::{$method}") {
            'Hyperf\HttpServer\Server::onRequest' => $this->requestHandler($port, $server),
            'Hyperf\Framework\Bootstrap\StartCallback::onStart' => fn (SwooleServer $server) => $this->log('info', 'listening', [
                // What Swoole itself holds: every port with its final settings.
                'ports' => array_map(static fn ($p) => [
                    'host' => $p->host,
                    'port' => $p->port,
                    'tls' => (bool) $p->ssl,
                    'client_cert' => ($p->setting['ssl_verify_peer'] ?? false) === true,
                ], array_values($server->ports)),
                'allowed_clients' => array_keys($this->allowed),
                'allowed_spiffe_ids' => array_keys($this->allowedIds),
                'revoked' => $this->crl?->count() ?? 0,
            ]),
            'Hyperf\Framework\Bootstrap\ManagerStartCallback::onManagerStart',
            'Hyperf\Framework\Bootstrap\WorkerStartCallback::onWorkerStart',
            'Hyperf\Framework\Bootstrap\WorkerStopCallback::onWorkerStop',
            'Hyperf\Framework\Bootstrap\WorkerExitCallback::onWorkerExit',
            'Hyperf\Framework\Bootstrap\PipeMessageCallback::onPipeMessage' => static function (): void {},
            default => throw new RuntimeException("server.php names {$class}::{$method}, which this sample has no handler for"),
        };
    }

    /** One JSON log line on stdout, the seed's "Logging" format. */
    public function log(string $level, string $event, array $fields = []): void
    {
        $line = ['timestamp' => gmdate('Y-m-d\TH:i:s') . sprintf('.%03dZ', (int) (microtime(true) * 1000) % 1000), 'level' => $level, 'service' => $this->service, 'event' => $event] + $fields;
        fwrite(STDOUT, json_encode($line, JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE) . "\n");
    }

    /**
     * Hyperf takes Hyperf\HttpServer\Server from its container, one instance for every server that
     * names it, so one handler serves all ports; like an application under Hyperf, it tells the
     * ports apart by the port a request came in on (its settings decide mTLS or not).
     */
    private function requestHandler(array $port, SwooleServer $server): \Closure
    {
        $this->ports[$port['port']] = $port;
        return $this->onRequest ??= function (Request $request, Response $response) use ($server): void {
            try {
                $settings = $this->ports[(int) ($request->server['server_port'] ?? 0)]['settings'] ?? [];
                if (($settings['ssl_verify_peer'] ?? false) === true) {
                    // The port's settings fix the protocol: Swoole reports neither version nor suite per connection.
                    $tlsVersion = ($settings['ssl_protocols'] ?? null) === SWOOLE_SSL_TLSv1_3 ? 'TLSv1.3' : null;
                    $this->handleMtls($request, $response, $server, $tlsVersion);
                } else {
                    $this->handlePlain($request, $response);
                }
            } catch (Throwable $e) {
                $this->log('error', 'request_failed', ['message' => $e->getMessage()]);
                $this->send($response, 500, ['error' => 'internal']);
            }
        };
    }

    /** The spiffe:// URI SANs of a parsed certificate (an X509-SVID has exactly one). */
    private static function spiffeIds(array $cert): array
    {
        $ids = [];
        foreach (explode(',', (string) ($cert['extensions']['subjectAltName'] ?? '')) as $entry) {
            $entry = trim($entry);
            if (str_starts_with($entry, 'URI:spiffe://')) {
                $ids[] = substr($entry, 4);
            }
        }
        return $ids;
    }

    private function handleMtls(Request $request, Response $response, SwooleServer $server, ?string $tlsVersion): void
    {
        $info = $server->getClientInfo($request->fd) ?: [];
        $pem = $info['ssl_client_cert'] ?? '';
        $cert = $pem === '' ? false : openssl_x509_parse($pem);
        $clientCn = is_array($cert) ? (string) ($cert['subject']['CN'] ?? '') : '';
        $path = (string) ($request->server['request_uri'] ?? '/');
        $first = $this->firstRequest($request->fd, $info);
        if ($cert === false || ($this->crl !== null && $this->crl->isRevoked($pem))) {
            $reason = $cert === false ? 'no client certificate' : 'CERT_REVOKED';
            if ($first) {
                $this->log('warn', 'mtls_handshake_failed', ['client_cn' => $clientCn, 'server_cn' => $this->selfCn, 'remote' => $info['remote_ip'] ?? '', 'error' => $reason, 'reason' => $reason]);
            }
            $this->refuse($request, $response, ['error' => 'forbidden', 'reason' => $reason, 'client_cn' => $clientCn]);
            return;
        }
        if ($first) {
            $this->log('info', 'mtls_handshake_complete', array_filter(['client_cn' => $clientCn, 'server_cn' => $this->selfCn, 'tls_version' => $tlsVersion], static fn ($v) => $v !== null));
        }
        $ids = self::spiffeIds($cert);
        $allowed = $ids === [] ? isset($this->allowed[$clientCn]) : (count($ids) === 1 && isset($this->allowedIds[$ids[0]]));
        if (! $allowed) {
            $this->log('warn', 'mtls_authorization_denied', array_filter(['client_cn' => $clientCn, 'client_spiffe_id' => implode(',', $ids), 'server_cn' => $this->selfCn, 'path' => $path], static fn ($v) => $v !== ''));
            $this->refuse($request, $response, array_filter(['error' => 'forbidden', 'client_cn' => $clientCn, 'client_spiffe_id' => implode(',', $ids)], static fn ($v) => $v !== ''));
            return;
        }
        $method = $request->server['request_method'] ?? 'GET';
        if ($method === 'GET' && $path === '/health') {
            [$status, $body] = $this->health();
            $this->send($response, $status, $body);
        } elseif ($method === 'GET' && $path === '/whoami') {
            $this->send($response, 200, array_filter(['client_cn' => $clientCn, 'client_spiffe_id' => $ids[0] ?? '', 'server_cn' => $this->selfCn], static fn ($v) => $v !== ''));
        } elseif ($method === 'GET' && preg_match('#^/call/([a-z0-9-]+)$#', $path, $m)) {
            $this->call($m[1], $response);
        } else {
            $this->send($response, 404, ['error' => 'not found']);
        }
    }

    /** A port without client certificates (the gateway's public TLS port, dev plain HTTP ports). */
    private function handlePlain(Request $request, Response $response): void
    {
        $path = (string) ($request->server['request_uri'] ?? '/');
        if ($path === '/health') {
            [$status, $body] = $this->health();
            $this->send($response, $status, $body);
        } elseif ($path === '/') {
            $this->send($response, 200, ['service' => $this->service, 'dns_name' => $this->selfCn]);
        } else {
            $this->send($response, 404, ['error' => 'not found']);
        }
    }

    /** Once per connection: Swoole has no per-connection TLS event for HTTP ports without onConnect. */
    private function firstRequest(int $fd, array $info): bool
    {
        $key = $fd . '/' . ($info['connect_time'] ?? '') . '/' . ($info['remote_port'] ?? '');
        if (isset($this->logged[$key])) {
            return false;
        }
        if (count($this->logged) > 10000) {
            $this->logged = [];
        }
        $this->logged[$key] = true;
        return true;
    }

    private function refuse(Request $request, Response $response, array $body): void
    {
        // HTTP/1.x: Swoole closes the connection after this response when told so. HTTP/2 forbids
        // the header; its later streams are checked again one by one.
        if (($request->server['server_protocol'] ?? '') !== 'HTTP/2') {
            $response->header('connection', 'close');
        }
        $this->send($response, 403, $body);
    }

    /** @return array{int, array} */
    private function health(): array
    {
        $checks = [];
        if (($this->env['DB_HOST'] ?? '') !== '') {
            $checks['postgres'] = $this->checkPostgres();
        }
        if (($this->env['REDIS_HOST'] ?? '') !== '') {
            $checks['redis'] = $this->checkRedis();
        }
        $failed = array_filter($checks, static fn ($r) => $r !== 'ok');
        $body = ['status' => $failed ? 'unavailable' : 'ok', 'service' => $this->service, 'dns_name' => $this->selfCn, 'checks' => (object) $checks];
        if ($failed) {
            $this->log('error', 'health_check_failed', ['checks' => $failed]);
        }
        return [$failed ? 503 : 200, $body];
    }

    /**
     * A secret the way the official images take theirs: from the file `<NAME>_FILE` names (podmesh
     * mounts its generated secrets under /run/secrets and sets only these variables), else from the
     * variable itself; '' when neither is set. Trailing newlines are not part of the value.
     *
     * @return string|array{error: string}
     */
    private function secret(string $name): string|array
    {
        $file = $this->env[$name . '_FILE'] ?? '';
        if ($file === '') {
            return (string) ($this->env[$name] ?? '');
        }
        $value = @file_get_contents($file);
        if ($value === false) {
            return ['error' => "{$name}_FILE {$file} cannot be read"];
        }
        return rtrim($value, "\r\n");
    }

    /**
     * SELECT 1 with the generated DB_* settings and the DB_PASSWORD secret (from DB_PASSWORD_FILE);
     * with DB_SCHEMA (the client's own role), its schema must be the role's search_path.
     */
    private function checkPostgres(): string
    {
        $driver = $this->env['DB_DRIVER'] ?? 'pgsql';
        if ($driver !== 'pgsql') {
            return "DB_DRIVER {$driver} is not supported by the sample (pgsql only)";
        }
        if (! extension_loaded('pdo_pgsql')) {
            return 'the pdo_pgsql extension is not loaded (apt-get install php8.2-pgsql)';
        }
        // pdo_pgsql (libpq) is not coroutine-aware: a slow name lookup inside it would hold the whole
        // worker (aardvark-dns pauses while containers join the network). Resolve in a coroutine
        // first, with a bound, and hand libpq the address.
        $host = $this->env['DB_HOST'];
        $address = \Swoole\Coroutine\System::gethostbyname($host, \defined('AF_INET') ? AF_INET : 2, 3);
        if ($address === false || $address === '') {
            return "cannot resolve {$host} within 3 s";
        }
        $password = $this->secret('DB_PASSWORD');
        if (! \is_string($password)) {
            return $password['error'];
        }
        $dsn = sprintf('pgsql:host=%s;port=%d;dbname=%s;connect_timeout=3', $address, (int) ($this->env['DB_PORT'] ?? 5432), $this->env['DB_DATABASE'] ?? 'postgres');
        try {
            $pdo = new \PDO($dsn, $this->env['DB_USERNAME'] ?? 'postgres', $password, [\PDO::ATTR_ERRMODE => \PDO::ERRMODE_EXCEPTION, \PDO::ATTR_TIMEOUT => 3]);
            $one = $pdo->query('SELECT 1')->fetchColumn();
            if ((string) $one !== '1') {
                return "SELECT 1 returned {$one}";
            }
            $schema = $this->env['DB_SCHEMA'] ?? '';
            if ($schema !== '') {
                $current = (string) $pdo->query('SELECT current_schema()')->fetchColumn();
                if ($current !== $schema) {
                    return "current_schema() is \"{$current}\", not DB_SCHEMA \"{$schema}\"";
                }
            }
            return 'ok';
        } catch (\PDOException $e) {
            return $e->getMessage();
        }
    }

    /**
     * AUTH with the REDIS_AUTH secret (from REDIS_AUTH_FILE), as the ACL user REDIS_USERNAME when
     * set (`AUTH <user> <password>`, Redis 6+), else as the default user; then PING, in RESP over a
     * Swoole coroutine socket.
     */
    private function checkRedis(): string
    {
        $auth = $this->secret('REDIS_AUTH');
        if (! \is_string($auth)) {
            return $auth['error'];
        }
        $client = new CoroutineClient(SWOOLE_SOCK_TCP);
        $client->set(['open_eof_check' => true, 'package_eof' => "\r\n", 'timeout' => 3]);
        if (! $client->connect($this->env['REDIS_HOST'], (int) ($this->env['REDIS_PORT'] ?? 6379), 3)) {
            return "connect: {$client->errMsg}";
        }
        try {
            if ($auth !== '') {
                $user = $this->env['REDIS_USERNAME'] ?? '';
                $reply = $this->redis($client, $user !== '' ? ['AUTH', $user, $auth] : ['AUTH', $auth]);
                if ($reply !== '+OK') {
                    return "AUTH refused: {$reply}";
                }
            }
            $reply = $this->redis($client, ['PING']);
            return $reply === '+PONG' ? 'ok' : "PING answered {$reply}";
        } finally {
            $client->close();
        }
    }

    private function redis(CoroutineClient $client, array $command): string
    {
        $wire = '*' . count($command) . "\r\n";
        foreach ($command as $word) {
            $wire .= '$' . strlen($word) . "\r\n{$word}\r\n";
        }
        if ($client->send($wire) === false) {
            return "send: {$client->errMsg}";
        }
        $reply = $client->recv(3);
        return $reply === false || $reply === '' ? "no reply: {$client->errMsg}" : rtrim($reply, "\r\n");
    }

    /** GET <callee>/health with the client options Hyperf's coroutine Guzzle handler would pass to Swoole. */
    private function call(string $name, Response $response): void
    {
        $variable = strtoupper(preg_replace('/[^a-z0-9]+/i', '_', $name)) . '_SERVICE_URL';
        $base = $this->client['mtls_services'][$name] ?? ($this->env[$variable] ?? '');
        if ($base === '') {
            $this->send($response, 404, ['error' => "{$variable} is not set: this service may not call {$name}"]);
            return;
        }
        $result = $this->get("{$base}/health");
        $this->log(($result['status'] ?? 0) === 200 ? 'info' : 'error', 'upstream_call', ['target' => $base] + $result);
        $this->send($response, ($result['status'] ?? 0) === 200 ? 200 : 502, ['target' => $base] + $result);
    }

    /** @return array{status: int, body: string}|array{error: string} */
    private function get(string $url): array
    {
        $uri = parse_url($url);
        $ssl = ($uri['scheme'] ?? '') === 'https';
        $host = (string) ($uri['host'] ?? '');
        $client = new CoroutineHttpClient($host, (int) ($uri['port'] ?? ($ssl ? 443 : 80)), $ssl);
        $client->setMethod('GET');
        // Guzzle's own defaults (verify => true, ...) under the generated default_options.
        $settings = GuzzleSettings::fromOptions(array_replace(['verify' => true], $this->client['http_client']['default_options'] ?? []), $host);
        if ($settings !== []) {
            $client->set($settings);
        }
        try {
            $client->execute(($uri['path'] ?? '') === '' ? '/' : $uri['path']);
            return match ($client->statusCode) {
                SWOOLE_HTTP_CLIENT_ESTATUS_CONNECT_FAILED => ['error' => "Connection failed, errCode={$client->errCode} ({$client->errMsg})"],
                SWOOLE_HTTP_CLIENT_ESTATUS_REQUEST_TIMEOUT => ['error' => "Request timed out, errCode={$client->errCode}"],
                SWOOLE_HTTP_CLIENT_ESTATUS_SERVER_RESET => ['error' => "Server reset, errCode={$client->errCode} ({$client->errMsg})"],
                default => ['status' => $client->statusCode, 'body' => (string) $client->body],
            };
        } finally {
            $client->close();
        }
    }

    private function send(Response $response, int $status, array $body): void
    {
        $response->status($status);
        $response->header('content-type', 'application/json');
        $response->end(json_encode($body, JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE) . "\n");
    }

    private function fail(string $message): never
    {
        $this->log('error', 'config_error', ['message' => $message]);
        exit(78);
    }

    private static function readFile(string $file): string
    {
        $text = @file_get_contents($file);
        if ($text === false) {
            throw new RuntimeException('cannot be read');
        }
        return $text;
    }
}
