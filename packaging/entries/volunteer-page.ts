// Entry of the browser volunteer's page script (packaging/volunteer-bundle.ts): the page's UI and enrolment.
import '../../worker/browser/volunteer-page.ts';
