// An example podmesh stack: one host, one network, a web front end that calls an API over mTLS,
// and the API's PostgreSQL. `npm run synth` renders it into out/example/; rename and edit freely.
import { type App, Host, Network, Postgres, Service, Stack } from 'podmesh';

export default (app: App): void => {
  const stack = new Stack(app, 'example', {
    project: 'example',
    description: 'An example mesh: web calls api over mTLS; api keeps its data in PostgreSQL.',
  });
  new Host(stack, 'local', { podmanVersion: '5.4', rootless: true });
  new Network(stack, 'mesh', { subnet: '10.80.0.0/24', domain: 'example.local' });

  // Infrastructure without mTLS: image, port, data volume, health check and password are preset.
  const db = new Postgres(stack, 'postgres', { database: 'example', user: 'example' });

  // Application services listen for mTLS on 8443 and get a server and a client certificate.
  const api = new Service(stack, 'api', {
    image: 'ghcr.io/example/api:1.0.0',
    ports: { http: 8080 },
    dependsOn: [db], // starts once PostgreSQL is healthy; gets DB_HOST, DB_DATABASE, DB_PASSWORD_FILE, …
    // A Hyperf application by default: podmesh writes its config/autoload/*.php (mTLS server, policy).
  });
  new Service(stack, 'web', {
    image: 'ghcr.io/example/web:1.0.0',
    ports: { public: { port: 8080, publish: 8080 } }, // http://localhost:8080 on the host
    calls: [api], // web gets API_SERVICE_URL; api accepts web's client certificate, nobody else's
    hyperf: false, // this image configures itself from the environment alone
  });
};
