'use strict';
// A process that exits without closing its dispatcher, in one of several ways.
//   node exit-child.js MODE URL [STORE]
// MODE: fall-off        the script ends with the dispatcher running and a 'result' listener
//       process-exit    process.exit(0) right after emitting
//       in-flight       process.exit(0) while requests wait on a receiver that hangs
//       exit-in-handler process.exit(0) from inside a 'result' listener
//       uncaught        an uncaught exception in the main script after start (exit 1)
//       handler-throws  a 'result' listener throws, no 'error' listener (exit 1)
//       close-at-end    awaits drain() and close() as the last thing: both must
//                       finish before the process ends (prints "closed N")
const wh = require('..');

const [mode, url, store = 'memory:'] = process.argv.slice(2);
const reg = wh.openRegistry(store);
reg.addEndpoint({ name: 'rx', url });
const d = new wh.Dispatcher(reg, { allowPrivateNetworks: true, workers: 2 });
let n = 0;
d.on('result', () => {
  n++;
  if (mode === 'exit-in-handler' && n === 3) process.exit(0);
  if (mode === 'handler-throws') throw new Error('handler boom');
});
d.start();
for (let i = 0; i < 20; i++) d.emit({ resourceType: 'people', eventType: 'CREATE', resource: { n: i } });

if (mode === 'process-exit') process.exit(0);
if (mode === 'in-flight') setTimeout(() => process.exit(0), 300);
if (mode === 'uncaught') setTimeout(() => {
  throw new Error('main boom');
}, 100);
if (mode === 'handler-throws' || mode === 'exit-in-handler') setTimeout(() => {}, 10000); // until a result comes
if (mode === 'close-at-end')
  (async () => {
    await d.drain(10000);
    console.log(`drained ${n}`);
    await d.close();
    console.log(`closed ${n}`);
  })();
// fall-off: nothing keeps the event loop alive, the process ends here.
