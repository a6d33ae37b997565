import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fenceRefusal, promoteRefusal, type FencePrivileges, type PromotePrivileges } from '../../src/engines/postgres-privileges.js';

test('fence: a superuser may always; an owner may when it can end every session; each missing right is named with its fix', () => {
  const role = (p: Partial<FencePrivileges>): FencePrivileges => ({ role: 'dr', superuser: false, ownsDatabase: true, seesSessionKinds: true, unsignalable: [], ...p });
  assert.equal(fenceRefusal('images', role({ superuser: true, ownsDatabase: false, unsignalable: [{ role: 'postgres', superuser: true }] })), undefined);
  assert.equal(fenceRefusal('images', role({})), undefined);
  assert.equal(
    fenceRefusal('images', role({ ownsDatabase: false, unsignalable: [{ role: 'app', superuser: false }, { role: 'postgres', superuser: true }] })),
    'role "dr" may not fence images: making it read-only (ALTER DATABASE) needs its owner or a superuser: ALTER DATABASE "images" OWNER TO "dr"; ' +
      'ending the sessions of "app" needs GRANT pg_signal_backend TO "dr"; the sessions of the superuser role "postgres" can only be ended by a superuser',
  );
  assert.match(
    fenceRefusal('images', role({ seesSessionKinds: false, unsignalable: [{ role: 'postgres', superuser: true }] })) ?? '',
    /can only be ended by a superuser \(if they are PostgreSQL's own workers, such as autovacuum, GRANT pg_read_all_stats TO "dr" lets the sidecar tell\)$/,
  );
});

test('promote: a standby needs EXECUTE on pg_promote; every target needs to own its database (to lift the fence that reached it)', () => {
  const role = (p: Partial<PromotePrivileges>): PromotePrivileges => ({ role: 'dr', superuser: false, ownsDatabase: true, inRecovery: true, canPromote: true, ...p });
  assert.equal(promoteRefusal('images', role({})), undefined);
  assert.equal(promoteRefusal('images', role({ superuser: true, ownsDatabase: false, canPromote: false })), undefined);
  assert.equal(promoteRefusal('images', role({ inRecovery: false, canPromote: false })), undefined, 'an independent server is not promoted');
  assert.equal(
    promoteRefusal('images', role({ canPromote: false, ownsDatabase: false })),
    'role "dr" may not make images the primary: promoting the standby needs a superuser or GRANT EXECUTE ON FUNCTION pg_promote TO "dr"; ' +
      'lifting its read-only setting (ALTER DATABASE … RESET) needs its owner or a superuser: ALTER DATABASE "images" OWNER TO "dr"',
  );
});
