// The anchor of the 1,000-service row: cdk8s (2.x, the tool podmesh is compared with) rendering
// the same 1,000 services as Deployments and Services to YAML files, in a fresh process as
// `npm run bench` runs podmesh. Prints nothing; writes into the folder it is given.
import { ApiObject, App, Chart } from 'cdk8s';

const [services, outdir] = [Number(process.argv[2]), process.argv[3]!];
const app = new App({ outdir });
const chart = new Chart(app, 'bench');
for (let i = 0; i < services; i++) {
  const name = `svc-${i}`;
  const labels = { app: name };
  const port = 9000 + (i % 100);
  new ApiObject(chart, `${name}-deployment`, {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          containers: [{ name, image: `ghcr.io/bench/svc-${i % 17}:1.0.${i % 5}`, ports: [{ containerPort: port }], env: [{ name: 'LOG_LEVEL', value: 'info' }, { name: 'SHARD', value: String(i % 8) }] }],
        },
      },
    },
  });
  new ApiObject(chart, `${name}-service`, { apiVersion: 'v1', kind: 'Service', metadata: { name }, spec: { selector: labels, ports: [{ port, targetPort: port }] } });
}
app.synth();
