/**
 * The studio plugin of the Train and Review pages: a JobManager per opened project (opening one marks runs that
 * a killed studio left 'running' as 'stopped'), the routes of train-routes.ts on the open project, and the
 * StudioContext's `jobs` slot filled (busy, onProject). Local backbone folders come from the slot's `backbones`
 * (createStudioServer({ jobs: { backbones } }), `tlearn studio --backbone`) and TLEARN_STUDIO_BACKBONE.
 * Closing the studio stops a running training at a safe point; it stays resumable ('stopped').
 */
import type { FastifyInstance } from 'fastify';
import type { StudioContext, StudioProject } from './context.js';
import { JobManager } from './jobs.js';
import { trainRoutes } from './train-routes.js';

export async function trainPlugin(app: FastifyInstance, ctx: StudioContext): Promise<void> {
  const managers = new Map<string, Promise<JobManager>>();
  const backbones = Array.isArray(ctx.jobs.backbones) ? (ctx.jobs.backbones as string[]) : [];
  const threads = typeof ctx.jobs.threads === 'number' ? ctx.jobs.threads : undefined;
  const managerOf = (p: StudioProject): Promise<JobManager> => {
    let m = managers.get(p.stateDir);
    if (!m) {
      m = JobManager.open({ projectDir: p.root, stateDir: p.stateDir, backbones, threads });
      managers.set(p.stateDir, m);
      m.catch(() => managers.delete(p.stateDir));
    }
    return m;
  };
  const settled = async () => (await Promise.all([...managers.values()].map((m) => m.catch(() => undefined)))).filter((m): m is JobManager => Boolean(m));
  let busy = false;
  const refreshBusy = async () => {
    busy = (await settled()).some((m) => m.running());
  };
  ctx.jobs.busy = () => busy;
  ctx.jobs.onProject = async (p) => {
    if (p) await managerOf(p);
  };
  if (ctx.project) await managerOf(ctx.project);
  app.addHook('onResponse', async () => void refreshBusy());
  app.addHook('preClose', async () => {
    await Promise.all((await settled()).map((m) => m.close()));
  });
  await trainRoutes(app, {
    backbones,
    current: async () => {
      const p = ctx.requireProject();
      return { jobs: await managerOf(p), projectDir: p.root, stateDir: p.stateDir };
    },
  });
}
