// Compiled (not run) by test/types.test.js with tsc --strict: the API of
// BINDINGS.md as a TypeScript user writes it must type-check against index.d.ts.
import * as wh from '..';

async function main(): Promise<void> {
  const reg: wh.Registry = wh.openRegistry('memory:');
  const id: string = reg.addEndpoint({ name: 'CRM', url: 'https://crm.example.com/hooks', filters: ['people.*'], headers: {} });
  const ep: wh.Endpoint = reg.endpoint(id);
  const all: wh.Endpoint[] = reg.endpoints();
  const acme: wh.Registry = reg.tenant('acme');
  const tenant: string | null = acme.tenantId;
  reg.configureEndpoint(id, { ordered: true, retrySchedule: [1, 5] });
  const d = new wh.Dispatcher(reg, { workers: 2, allowPrivateNetworks: true, retrySchedule: [1, 1] });
  d.on('result', (r: wh.Result) => {
    const o: 'delivered' | 'retrying' | 'failed' = r.outcome;
    const s: number = r.httpStatus;
    const e: string | null = r.error;
    void [o, s, e];
  });
  d.on('error', (e: unknown) => void e);
  d.start();
  const msgId: string = d.emit({ resourceType: 'people', eventType: 'CREATE', resource: { id: 'p1' }, tenantId: 'acme', userId: 'u1', resourceId: 'p1' });
  const ids: string[] = d.emitBatch([{ resourceType: 'people', eventType: 'DELETE' }]);
  await d.drain(5000);
  const log: Record<string, any> = reg.message(msgId);
  await d.close(5000);
  reg.close();
  try {
    wh.verify('whsec_x', { 'webhook-id': 'a' }, Buffer.from(''));
  } catch (e) {
    if (e instanceof wh.WebhookError) {
      const c: number = e.code;
      const n: string = e.codeName;
      void [c, n, e.detail];
    }
  }
  const sig: string = wh.sign('whsec_x', 'msg_1', new Date(), '{}');
  const k: number = wh.constants.WH_ESIGNATURE;
  void [ep, all, tenant, ids, log, sig, k];
}
void main;
