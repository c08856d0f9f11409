/**
 * tlearn studio: the local app for people who do not live in a terminal. One page (web/studio/) over one fastify
 * server on loopback, for the whole loop on a project folder (a folder of class folders, which the CLI keeps
 * working on): collect images (files, folders, paste, webcam), see what is wrong with them (`tlearn check`), fix it
 * (every file action journaled and undoable), train, review, try and export.
 *
 * How it is built:
 * - server.ts   createStudioServer(options) → { app, url, token, openUrl, ctx, close }
 * - auth.ts     token (?token= or Bearer, then a cookie), Host and Origin checks, on every route
 * - context.ts  StudioContext: the open project, its state folder in TLEARN_HOME, logger, the `jobs` slot
 * - project.ts  names from the page resolved inside the project, or 400
 * - journal.ts  the action log (JSONL, fsync'd before each action), recovery at start, undo
 * - actions.ts  the file actions as journal steps; files.ts their routes
 * - data.ts     classes, images, thumbnails (thumbs.ts), check findings
 * - runs.ts     runs.json, Try (serve's model loader and classify code) and Export (zip)
 * - projects.ts recent projects, open, create; pages.ts the page and its assets
 *
 * Adding a plugin: write `export async function myRoutes(app: FastifyInstance, ctx: StudioContext)` in its own
 * file, register routes under /api/<name>/ (call ctx.requireProject() for the open project; throw HttpError for
 * answers the page shows: plain words, what to do), and add it to STUDIO_PLUGINS in server.ts (or pass it in
 * options.plugins). Auth, Host and Origin checks already cover it. A page goes in web/studio/<name>.js, exporting
 * `render(root, api)`; add it to PAGES in web/studio/app.js.
 */
export { createStudioServer, STUDIO_PLUGINS, type StudioOptions, type StudioPlugin, type StudioServer } from './server.js';
export { type StudioContext, type StudioJobs, type StudioProject, STATE_FILES, projectStateDir, studioHome } from './context.js';
export { Journal, type ActionSummary, type Step } from './journal.js';
export { readRuns, findRun, serveCommand, type RunEntry, type RunStatus } from './runs.js';
export { checkName, classPath, imagePath, TRASH } from './project.js';
