// Node 20's --test-force-exit ends a test file's process before the last of its report has
// gone through the pipe to the runner, and those tests vanish from the count
// (nodejs/node#54327; measured here: 47 to 65 of 65 tests reported by one file). Blocking
// writes finish before the process exits.
for (const stream of [process.stdout, process.stderr]) stream._handle?.setBlocking?.(true);
