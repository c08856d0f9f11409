/**
 * Prometheus metrics with prom-client, in a registry of the server's own (two servers in one process do not
 * mix): requests by route and status, request latency, batch sizes and forward-pass seconds, images by model,
 * plus the process' default metrics. Routes are labelled by their pattern, so label values stay few.
 */
import type { FastifyInstance } from 'fastify';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface ServerMetrics {
  registry: Registry;
  observeBatch(model: string, size: number, seconds: number): void;
  countImages(model: string, n: number, unknown: number): void;
}

export function createMetrics(maxBatch: number): ServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tlearn_' });
  const buckets = [1, 2, 4, 8, 16, 32, 64, 128].filter((b) => b < maxBatch);
  const batchSize = new Histogram({ name: 'tlearn_batch_size', help: 'Images per forward pass', labelNames: ['model'], buckets: [...buckets, maxBatch], registers: [registry] });
  const batchSeconds = new Histogram({ name: 'tlearn_forward_seconds', help: 'Seconds per forward pass', labelNames: ['model'], buckets: [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2], registers: [registry] });
  const images = new Counter({ name: 'tlearn_images_total', help: 'Images classified', labelNames: ['model', 'unknown'], registers: [registry] });
  return {
    registry,
    observeBatch(model, size, seconds) {
      batchSize.observe({ model }, size);
      batchSeconds.observe({ model }, seconds);
    },
    countImages(model, n, unknown) {
      if (n - unknown) images.inc({ model, unknown: 'false' }, n - unknown);
      if (unknown) images.inc({ model, unknown: 'true' }, unknown);
    },
  };
}

/** Counts every request by method, route pattern and status, and times it. */
export function installRequestMetrics(app: FastifyInstance, m: ServerMetrics): void {
  const requests = new Counter({ name: 'tlearn_http_requests_total', help: 'HTTP requests by method, route and status', labelNames: ['method', 'route', 'status'], registers: [m.registry] });
  const latency = new Histogram({
    name: 'tlearn_http_request_duration_seconds',
    help: 'HTTP request latency by route',
    labelNames: ['method', 'route'],
    buckets: [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5],
    registers: [m.registry],
  });
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions?.url ?? 'unmatched';
    requests.inc({ method: req.method, route, status: String(reply.statusCode) });
    latency.observe({ method: req.method, route }, reply.elapsedTime / 1000);
  });
}
