<?php
// Stand-ins for the two Hyperf classes a generated config/autoload/server.php names
// (`use Hyperf\Server\Event; use Hyperf\Server\Server;`), with Hyperf's own constant values
// (hyperf/server src/Event.php and src/ServerInterface.php). Hyperf itself is not on the Packagist
// mirror these machines reach; when the real classes are loaded, these are not declared.
declare(strict_types=1);

namespace Hyperf\Server;

if (! interface_exists(ServerInterface::class, false)) {
    interface ServerInterface
    {
        public const SERVER_HTTP = 1;

        public const SERVER_WEBSOCKET = 2;

        public const SERVER_BASE = 3;
    }
}

if (! class_exists(Server::class, false)) {
    /** Only its constants (inherited from ServerInterface) are used by server.php. */
    final class Server implements ServerInterface
    {
    }
}

if (! class_exists(Event::class, false)) {
    final class Event
    {
        public const ON_START = 'start';

        public const ON_WORKER_START = 'workerStart';

        public const ON_WORKER_STOP = 'workerStop';

        public const ON_WORKER_EXIT = 'workerExit';

        public const ON_WORKER_ERROR = 'workerError';

        public const ON_PIPE_MESSAGE = 'pipeMessage';

        public const ON_REQUEST = 'request';

        public const ON_RECEIVE = 'receive';

        public const ON_CONNECT = 'connect';

        public const ON_HAND_SHAKE = 'handshake';

        public const ON_OPEN = 'open';

        public const ON_MESSAGE = 'message';

        public const ON_CLOSE = 'close';

        public const ON_TASK = 'task';

        public const ON_FINISH = 'finish';

        public const ON_SHUTDOWN = 'shutdown';

        public const ON_PACKET = 'packet';

        public const ON_MANAGER_START = 'managerStart';

        public const ON_MANAGER_STOP = 'managerStop';

        /** Hyperf's own hook, not a Swoole event. */
        public const ON_BEFORE_START = 'beforeStart';

        public static function isSwooleEvent($event): bool
        {
            return $event !== self::ON_BEFORE_START;
        }
    }
}
