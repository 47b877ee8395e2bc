/**
 * What `npm ci` installs fits the Node running it (no EBADENGINE warning for a newcomer on
 * Node 20), and every
 * package with an install script is either allowed or explicitly declined.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { createRequire } from 'node:module';

// npm's own range logic (semver is in the tree through npm tooling); only `satisfies` is used.
const semver = createRequire(import.meta.url)('semver') as {
  satisfies(version: string, range: string): boolean;
};

interface LockEntry {
  readonly version?: string;
  readonly engines?: { readonly node?: string } | readonly string[];
  readonly hasInstallScript?: boolean;
  readonly optional?: boolean;
}

const lock = JSON.parse(readFileSync('package-lock.json', 'utf8')) as { packages: Record<string, LockEntry> };
const manifest = JSON.parse(readFileSync('package.json', 'utf8')) as {
  allowScripts: Record<string, boolean>;
};
const installed = Object.entries(lock.packages).filter(([path]) => path.startsWith('node_modules/'));
const nameOf = (path: string): string =>
  path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);

void describe('the install', () => {
  void it('has no package that refuses this Node', () => {
    const oldest = process.version;
    const refusing = installed
      .filter(([, entry]) => {
        const range = Array.isArray(entry.engines) ? undefined : (entry.engines as { node?: string })?.node;
        return range !== undefined && !semver.satisfies(oldest, range);
      })
      .map(([path, entry]) => `${nameOf(path)}@${entry.version}`);
    assert.deepEqual(refusing, []);
  });

  void it('names every package with an install script in allowScripts', () => {
    const unnamed = installed
      .filter(([path, entry]) => entry.hasInstallScript === true && !(nameOf(path) in manifest.allowScripts))
      .map(([path]) => nameOf(path));
    assert.deepEqual(unnamed, []);
  });
});
