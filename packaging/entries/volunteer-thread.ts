// Entry of the browser volunteer's Web Worker (packaging/volunteer-bundle.ts): backends and the volunteer loop.
import '../../worker/browser/volunteer-thread.ts';
