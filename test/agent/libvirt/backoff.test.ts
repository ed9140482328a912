import t from 'tap';
import { backoffDelay, DEFAULT_BACKOFF } from '../../../agent/libvirt/index.js';

t.test('reconnect backoff grows exponentially, is capped, and jitters within ±20 %', async (t) => {
  const mid = () => 0.5;
  t.equal(backoffDelay(0, DEFAULT_BACKOFF, mid), 250);
  t.equal(backoffDelay(1, DEFAULT_BACKOFF, mid), 500);
  t.equal(backoffDelay(3, DEFAULT_BACKOFF, mid), 2000);
  t.equal(backoffDelay(30, DEFAULT_BACKOFF, mid), 10_000);
  t.equal(backoffDelay(0, DEFAULT_BACKOFF, () => 0), 200);
  t.equal(backoffDelay(0, DEFAULT_BACKOFF, () => 1), 300);
});
