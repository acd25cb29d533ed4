<?php
// hyperf/guzzle's CoroutineHandler::getSettings (src/guzzle/src/CoroutineHandler.php, Hyperf 3.1),
// ported without Guzzle: the Swoole\Coroutine\Http\Client settings that Hyperf derives from a
// request's Guzzle options. Only `verify`, `timeout`, `proxy`, `ssl_key`, `cert` and the `swoole`
// pass-through reach Swoole; every other option does nothing there. Note `verify` sets
// ssl_verify_peer => false and ssl_allow_self_signed => true (newer Hyperf sets ssl_verify_peer =>
// true): a config must restore verification in its `swoole` array, which is applied last.
declare(strict_types=1);

namespace PodmeshSample;

use InvalidArgumentException;

final class GuzzleSettings
{
    /** @param string $host the request URI's host (becomes ssl_host_name) */
    public static function fromOptions(array $options, string $host): array
    {
        $settings = [];
        if (isset($options['delay']) && $options['delay'] > 0) {
            usleep((int) ($options['delay'] * 1000));
        }

        if (isset($options['verify'])) {
            if ($options['verify'] === false) {
                $settings['ssl_verify_peer'] = false;
            } else {
                $settings['ssl_verify_peer'] = false;
                $settings['ssl_allow_self_signed'] = true;
                $settings['ssl_host_name'] = $host;
                if (is_string($options['verify'])) {
                    if (! file_exists($options['verify'])) {
                        throw new InvalidArgumentException("SSL CA bundle not found: {$options['verify']}");
                    }
                    if (is_dir($options['verify'])
                        || (is_link($options['verify']) && is_dir(readlink($options['verify'])))) {
                        $settings['ssl_capath'] = $options['verify'];
                    } else {
                        $settings['ssl_cafile'] = $options['verify'];
                    }
                }
            }
        }

        if (isset($options['timeout']) && $options['timeout'] > 0) {
            $settings['timeout'] = $options['timeout'];
        }

        if (isset($options['proxy']) && is_string($options['proxy'])) {
            $proxy = parse_url($options['proxy']);
            $settings['http_proxy_host'] = $proxy['host'] ?? '';
            $settings['http_proxy_port'] = $proxy['port'] ?? null;
            if (isset($proxy['user'])) {
                $settings['http_proxy_user'] = $proxy['user'];
                $settings['http_proxy_password'] = $proxy['pass'] ?? '';
            }
        }

        isset($options['ssl_key']) && $settings['ssl_key_file'] = $options['ssl_key'];
        isset($options['cert']) && $settings['ssl_cert_file'] = $options['cert'];

        if (isset($options['swoole']) && is_array($options['swoole'])) {
            $settings = array_replace($settings, $options['swoole']);
        }

        return $settings;
    }
}
