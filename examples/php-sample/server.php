<?php
// Entry point of the PHP sample service: boots the generated config/autoload/server.php through
// the Hyperf-equivalent loader and serves with the sample's handlers. Reads only the generated
// files under $APP_ROOT/config/autoload (default /opt/www, as in Hyperf images), the service's
// class they read ($APP_ROOT/app/Podmesh/Policy.php, loaded as Composer's PSR-4 map of the
// skeleton would) and the environment.  Run: php -d extension=swoole.so examples/php-sample/server.php
// No OCSP stapling: Swoole 6.0.2 has none (its ssl_stapling option is commented out in
// ext-src/swoole_server_port.cc and no status callback is ever set), so <server.crt>.ocsp is not
// served from here; podmesh verify reports such services "not stapled" (README, "OCSP").
declare(strict_types=1);

require_once __DIR__ . '/src/HyperfBoot.php';
require_once __DIR__ . '/src/Crl.php';
require_once __DIR__ . '/src/GuzzleSettings.php';
require_once __DIR__ . '/src/Sample.php';

use PodmeshSample\HyperfBoot;
use PodmeshSample\Sample;

if (! extension_loaded('swoole')) {
    fwrite(STDERR, "the swoole extension is not loaded: php -d extension=/path/to/swoole.so ...\n");
    exit(78);
}

$appRoot = rtrim(getenv('APP_ROOT') ?: '/opt/www', '/');
define('BASE_PATH', $appRoot);
HyperfBoot::autoloadApp($appRoot);
$autoload = BASE_PATH . '/config/autoload';
// The Hyperf skeleton ships runtime/ (the generated pid_file lives there).
is_dir(BASE_PATH . '/runtime') || @mkdir(BASE_PATH . '/runtime', 0755, true);

$server = HyperfBoot::readConfig("{$autoload}/server.php");
$client = HyperfBoot::readConfig("{$autoload}/mtls_client.php");
$policy = HyperfBoot::readConfig("{$autoload}/mtls_policy.php")['mtls_policy'] ?? [];

// The CA bundle the mTLS port trusts, from server.php itself (the listener that verifies clients).
$caFile = '';
foreach (HyperfBoot::sortedServers($server) as $port) {
    if (($port['settings']['ssl_verify_peer'] ?? false) === true) {
        $caFile = (string) ($port['settings']['ssl_client_cert_file'] ?? '');
    }
}

$sample = new Sample($policy, $client, getenv(), $caFile);
HyperfBoot::boot($server, [$sample, 'resolve'])->start();
