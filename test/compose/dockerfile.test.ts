/**
 * The sidecar's image, checked without a Docker engine: two stages on a pinned
 * node:20 image, production dependencies only at run time, a non-root user,
 * PostgreSQL client tools, a healthcheck, and a build context (an allow-list in
 * .dockerignore) that can hold no secret.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { describe, test } from 'node:test';
import { fromRoot } from '../support/paths.js';

const text = (rel: string) => fs.readFileSync(fromRoot(rel), 'utf8');

describe('Dockerfile', () => {
  const dockerfile = text('Dockerfile');
  const stages = dockerfile.split(/^FROM /m).slice(1);

  test('multi-stage on a pinned node:20 bookworm-slim', () => {
    assert.match(dockerfile, /^ARG NODE_IMAGE=node:20\.\d+\.\d+-bookworm-slim$/m);
    assert.equal(stages.length, 2, 'a build stage and a runtime stage');
    assert.ok(stages.every((s) => s.startsWith('${NODE_IMAGE} AS ')));
  });

  test('build with dev dependencies, run with production ones only', () => {
    const [build, runtime] = stages;
    assert.match(build!, /npm ci\b/);
    assert.match(build!, /npx tsc -p tsconfig\.json/);
    assert.match(build!, /npm prune --omit=dev/);
    assert.match(runtime!, /COPY --from=build \/app\/node_modules/);
    assert.doesNotMatch(runtime!, /npm (ci|install)\b/, 'the runtime stage installs nothing from npm');
  });

  test('runs as a non-root user, with pg_dump/pg_restore, and a healthcheck on /healthz', () => {
    const runtime = stages[1]!;
    assert.match(runtime, /apt-get install[^\n]*postgresql-client/);
    assert.match(runtime, /^USER node$/m);
    assert.match(runtime, /^HEALTHCHECK [\s\S]*\/healthz/m);
    assert.match(runtime, /^ENTRYPOINT \["node", "--max-semi-space-size=2", "bin\/disaster-recovery\.js"\]$/m);
    assert.match(runtime, /^CMD \["start-monitoring"\]$/m);
  });
});

describe('the image holds no secret', () => {
  test('the image is built from an allow-list that holds no secret, and declares none', () => {
    const ignore = text('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    assert.equal(ignore[0], '*', '.dockerignore starts by excluding everything');
    const allowed = ignore.slice(1).map((l) => l.replace(/^!/, '').replace(/\/$/, ''));
    assert.deepEqual(allowed.sort(), ['bin', 'package-lock.json', 'package.json', 'src', 'templates', 'tsconfig.json']);
    const dockerfile = text('Dockerfile');
    const copied = dockerfile
      .split('\n')
      .filter((line) => line.startsWith('COPY ') && !line.includes('--from='))
      .flatMap((line) => line.split(/\s+/).slice(1, -1).filter((arg) => !arg.startsWith('--')));
    assert.ok(copied.length >= 5, `COPY sources: ${copied.join(', ')}`);
    for (const source of copied.map((c) => c.replace(/\/$/, ''))) {
      assert.ok(allowed.includes(source), `Dockerfile copies ${source}, which .dockerignore leaves out`);
      assert.ok(fs.existsSync(fromRoot(source)), `Dockerfile copies ${source}, which does not exist`);
    }
    assert.doesNotMatch(dockerfile, /^\s*(ENV|ARG)\b[^\n]*(PASSWORD|TOKEN|SECRET)/im, 'no secret as ENV or ARG: they stay in the image\'s history');
  });
});
