/**
 * Every failure becomes a JSON answer `{ error, detail }` with the right status: 400 bad request, 401 no or
 * wrong API key, 404 no such route or model, 405 wrong method, 413 too large (bytes, pixels, images),
 * 415 not an image content type, 422 an image that cannot be decoded, 503 shutting down or timed out.
 * Unexpected errors answer 500 without internals, and are logged.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../util/log.js';

export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly error: string,
    readonly detail: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(`${error}: ${detail}`);
  }
}

export interface ErrorBody {
  error: string;
  detail: string;
}

const FASTIFY_ERRORS: Record<string, string> = {
  FST_PARTS_LIMIT: 'too many parts',
  FST_FIELDS_LIMIT: 'too many fields',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported content type',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'empty body',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid JSON',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'bad content length',
  FST_INVALID_MULTIPART_CONTENT_TYPE: 'bad multipart body',
  FST_MP_PREMATURE_CLOSE: 'bad multipart body',
  FST_PROTO_VIOLATION: 'bad multipart body',
};

/** The JSON body and status for any error thrown while handling a request. */
export function errorAnswer(e: unknown, bodyLimit: number): { status: number; body: ErrorBody; headers: Record<string, string> } {
  if (e instanceof HttpError) return { status: e.statusCode, body: { error: e.error, detail: e.detail }, headers: e.headers };
  const fe = e as FastifyError;
  const code = fe?.code ?? '';
  const status = typeof fe?.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 600 ? fe.statusCode : 500;
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE' || code === 'FST_REQ_FILE_TOO_LARGE') {
    return { status: 413, body: { error: 'body too large', detail: `the request body is over the limit of ${bodyLimit} bytes (--max-body-mb)` }, headers: {} };
  }
  if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return { status: 415, body: { error: 'unsupported content type', detail: 'send the image as the raw body (Content-Type image/jpeg, image/png, image/webp, image/gif, image/tiff, image/bmp or application/octet-stream), as multipart/form-data file fields, or TF-Serving JSON {"instances":[{"b64":"..."}]}' }, headers: {} };
  }
  if (code === 'FST_ERR_HANDLER_TIMEOUT') return { status: 503, body: { error: 'timeout', detail: 'the request took longer than the request timeout (--timeout-ms)' }, headers: {} };
  if (code === 'FST_FILES_LIMIT') return { status: 413, body: { error: 'too many images', detail: 'the multipart body has more files than the limit per request (--max-images)' }, headers: {} };
  if (FASTIFY_ERRORS[code]) return { status: status === 406 ? 400 : status, body: { error: FASTIFY_ERRORS[code]!, detail: fe.message }, headers: {} };
  if (status < 500) return { status, body: { error: 'bad request', detail: fe?.message ?? String(e) }, headers: {} };
  return { status: 500, body: { error: 'internal error', detail: 'the server failed while answering; see its log' }, headers: {} };
}

export function installErrorHandlers(app: FastifyInstance, bodyLimit: number, log: Logger): void {
  app.setErrorHandler((e: unknown, req: FastifyRequest, reply: FastifyReply) => {
    const a = errorAnswer(e, bodyLimit);
    if (a.status >= 500 && a.status !== 503) log.warn(`${req.method} ${req.url}: ${(e as Error)?.stack ?? e}`);
    void reply.code(a.status).headers(a.headers).send(a.body);
  });
  app.setNotFoundHandler((req: FastifyRequest, reply: FastifyReply) => {
    void reply.code(404).send({ error: 'not found', detail: `no route ${req.method} ${req.url.split('?')[0]}; see GET /v1/models` });
  });
}

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'] as const;

/** Answers 405 (with Allow) to the methods a route does not take, instead of a bare 404. */
export function methodNotAllowed(app: FastifyInstance, url: string, allowed: Array<(typeof METHODS)[number]>): void {
  const others = METHODS.filter((m) => !allowed.includes(m));
  const allow = [...allowed, ...(allowed.includes('GET') ? ['HEAD'] : [])].join(', ');
  app.route({
    method: others as unknown as string[],
    url,
    handler: async (req, reply) => {
      void reply.code(405).header('allow', allow).send({ error: 'method not allowed', detail: `${req.method} is not allowed on ${req.url.split('?')[0]}; use ${allowed.join(' or ')}` });
    },
  });
}
