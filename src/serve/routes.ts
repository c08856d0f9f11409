/**
 * The HTTP API: prediction (raw image body, multipart files, TF-Serving JSON), model cards, health and
 * metrics. Images are checked from their headers first, then decoded as in training and run through the
 * model's dynamic batcher.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { readProbabilities, type LabelProbability } from '../classifier/predict.js';
import { HttpError, methodNotAllowed } from './errors.js';
import { checkImage, prepareImage, tfServingImages, type RequestImage } from './images.js';
import type { ServerMetrics } from './metrics.js';
import type { ServedModel } from './models.js';

export interface ServeLimits {
  /** Largest request body in bytes (all files of a multipart request together). */
  bodyLimit: number;
  /** Largest image, in pixels, as declared by its header. */
  maxPixels: number;
  /** Most images in one request. */
  maxImages: number;
}

export interface ServeState {
  closing: boolean;
}

export interface ImageAnswer {
  /** The multipart file name (or TF-Serving instance), '' for a raw body. */
  image: string;
  top: LabelProbability[];
  /** The best probability is under the threshold. */
  unknown: boolean;
  /** Milliseconds from the start of decoding to the probabilities (decode, queue, forward pass). */
  ms: number;
}

interface Query {
  top: number;
  threshold: number;
}

function parseQuery(q: any, m: ServedModel): Query {
  const top = q?.top === undefined ? 5 : Number(q.top);
  if (!Number.isInteger(top) || top < 1) throw new HttpError(400, 'bad request', `top must be an integer >= 1, got '${q.top}'`);
  const threshold = q?.threshold === undefined || q.threshold === '' ? (m.classifier.metadata.threshold?.value ?? 0) : Number(q.threshold);
  if (!(threshold >= 0 && threshold <= 1)) throw new HttpError(400, 'bad request', `threshold must be a probability in [0, 1], got '${q.threshold}'`);
  return { top, threshold };
}

function safeName(s: string | undefined): string {
  return (s ?? '').replace(/[\u0000-\u001f\u007f]/g, '').slice(-200);
}

/** The images of a request: a raw image body, multipart/form-data file fields, or TF-Serving JSON. */
async function requestImages(req: FastifyRequest, limits: ServeLimits): Promise<RequestImage[]> {
  if (req.isMultipart()) {
    const images: RequestImage[] = [];
    let total = 0;
    const parts = req.parts({ limits: { fileSize: limits.bodyLimit, files: limits.maxImages, fields: 64, parts: limits.maxImages + 64 } });
    for await (const part of parts) {
      if (part.type !== 'file') continue;
      const bytes = await part.toBuffer();
      total += bytes.length;
      if (total > limits.bodyLimit) throw new HttpError(413, 'body too large', `the files add up to more than the limit of ${limits.bodyLimit} bytes (--max-body-mb)`);
      images.push({ name: safeName(part.filename || part.fieldname), bytes });
    }
    if (!images.length) throw new HttpError(400, 'no image', 'the multipart body has no file field');
    return images;
  }
  const body = req.body;
  if (Buffer.isBuffer(body)) return [{ name: '', bytes: body }];
  if (body && typeof body === 'object') return tfServingImages(body, limits.maxImages);
  throw new HttpError(400, 'empty body', 'send an image as the request body (e.g. Content-Type: image/jpeg), or multipart/form-data file fields');
}

/** Classifies the images of one request with one model: header checks for all first, then decode and batch. */
export async function classifyImages(m: ServedModel, images: RequestImage[], q: Query, limits: ServeLimits, metrics?: ServerMetrics): Promise<Array<ImageAnswer & { probabilities: number[] }>> {
  if (images.length > limits.maxImages) throw new HttpError(413, 'too many images', `${images.length} images; at most ${limits.maxImages} per request (--max-images)`);
  await Promise.all(images.map((img, i) => checkImage(img, i, images.length, limits.maxPixels)));
  const labels = m.classifier.metadata.labels;
  const answers = await Promise.all(
    images.map(async (img, i) => {
      const t0 = performance.now();
      const arrived = m.batcher.expect();
      let x: Float32Array;
      try {
        x = await prepareImage(img, i, images.length, m.classifier.metadata);
      } catch (e) {
        arrived();
        throw e;
      }
      const probs = await m.batcher.submit(x, arrived);
      const r = readProbabilities(probs, labels, q.top, q.threshold);
      return { image: img.name, ...r, ms: Math.round((performance.now() - t0) * 100) / 100, probabilities: Array.from(probs) };
    }),
  );
  metrics?.countImages(m.name, answers.length, answers.filter((a) => a.unknown).length);
  return answers;
}

export interface ApiContext {
  models: Map<string, ServedModel>;
  limits: ServeLimits;
  metrics: ServerMetrics;
  state: ServeState;
}

function modelNamed(ctx: ApiContext, name: string): ServedModel {
  const m = ctx.models.get(name);
  if (!m) throw new HttpError(404, 'unknown model', `no model named '${safeName(name)}'; served: ${[...ctx.models.keys()].join(', ')}`);
  return m;
}

const TF_SUFFIX = ':predict';

export async function apiRoutes(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  const predict = async (m: ServedModel, req: FastifyRequest) => {
    const q = parseQuery(req.query, m);
    const images = await requestImages(req, ctx.limits);
    const t0 = performance.now();
    const answers = await classifyImages(m, images, q, ctx.limits, ctx.metrics);
    return {
      model: m.name,
      threshold: q.threshold,
      predictions: answers.map(({ probabilities: _p, ...a }) => a),
      ms: Math.round((performance.now() - t0) * 100) / 100,
    };
  };

  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    if (ctx.state.closing) return reply.code(503).send({ status: 'shutting down' });
    return { status: 'ready', models: [...ctx.models.keys()] };
  });
  app.get('/metrics', async (_req, reply) => reply.type(ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics()));
  app.get('/v1/models', async () => ({ models: [...ctx.models.values()].map((m) => m.card) }));
  app.get('/v1/models/:name', async (req) => {
    const { name } = req.params as { name: string };
    if (name.endsWith(TF_SUFFIX)) throw new HttpError(405, 'method not allowed', `${TF_SUFFIX} takes POST`, { allow: 'POST' });
    return modelNamed(ctx, name).card;
  });
  app.post('/v1/models/:name/predict', async (req) => predict(modelNamed(ctx, (req.params as { name: string }).name), req));
  app.post('/v1/predict', async (req) => {
    if (ctx.models.size !== 1) throw new HttpError(400, 'which model?', `${ctx.models.size} models are served (${[...ctx.models.keys()].join(', ')}); POST to /v1/models/{name}/predict`);
    return predict(ctx.models.values().next().value!, req);
  });
  // TensorFlow Serving's REST predict: POST /v1/models/{name}:predict {"instances": [{"b64": "..."}]}
  app.post('/v1/models/:name', async (req) => {
    const { name } = req.params as { name: string };
    if (!name.endsWith(TF_SUFFIX)) throw new HttpError(405, 'method not allowed', `POST is not allowed on /v1/models/${safeName(name)}; use GET, or POST /v1/models/${safeName(name)}/predict`, { allow: 'GET, HEAD' });
    const m = modelNamed(ctx, name.slice(0, -TF_SUFFIX.length));
    const q = parseQuery(req.query, m);
    if (Buffer.isBuffer(req.body) || req.isMultipart()) throw new HttpError(400, 'bad request', 'the TF-Serving route takes JSON {"instances": [{"b64": "..."}]}; send raw images to /predict');
    const answers = await classifyImages(m, tfServingImages(req.body, ctx.limits.maxImages), q, ctx.limits, ctx.metrics);
    return { predictions: answers.map((a) => ({ probabilities: a.probabilities, label: a.top[0]!.label, probability: a.top[0]!.probability, unknown: a.unknown, top: a.top })) };
  });
  methodNotAllowed(app, '/healthz', ['GET']);
  methodNotAllowed(app, '/readyz', ['GET']);
  methodNotAllowed(app, '/metrics', ['GET']);
  methodNotAllowed(app, '/v1/models', ['GET']);
  methodNotAllowed(app, '/v1/models/:name/predict', ['POST']);
  methodNotAllowed(app, '/v1/predict', ['POST']);
  methodNotAllowed(app, '/v1/models/:name', ['GET', 'POST']);
}
