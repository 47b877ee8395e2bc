// `node --import ./test/helpers/module-recorder.mjs …` appends the URL of every module the
// process loads to the file named by ARBOR_MODULE_LOG.
import { register } from 'node:module';

register(new URL('./module-recorder-hooks.mjs', import.meta.url), {
  data: { file: process.env.ARBOR_MODULE_LOG },
});
