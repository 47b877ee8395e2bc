/**
 * The browser volunteer: its page and Web Worker (entries/volunteer-page.ts and
 * entries/volunteer-thread.ts) bundled with esbuild when the coordinator first serves
 * /volunteer, so a tab fetches nothing from outside the coordinator.
 */
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export interface VolunteerBundle {
  /** The page's script (UI, enrolment). */
  readonly page: Uint8Array;
  /** The Web Worker's script (backends, the volunteer loop). */
  readonly thread: Uint8Array;
}

const entry = (name: string): string => fileURLToPath(new URL(`./entries/${name}`, import.meta.url));

export async function buildVolunteerBundle(): Promise<VolunteerBundle> {
  const result = await build({
    entryPoints: {
      page: entry('volunteer-page.ts'),
      thread: entry('volunteer-thread.ts'),
    },
    outdir: '/volunteer',
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
    minify: true,
    write: false,
    logLevel: 'silent',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  const output = (name: string): Uint8Array => {
    const file = result.outputFiles.find((f) => f.path.endsWith(`/${name}.js`));
    if (file === undefined) throw new Error(`esbuild wrote no ${name}.js`);
    return file.contents;
  };
  return { page: output('page'), thread: output('thread') };
}
