export { HtabReadStream, HtabWriteStream, type HtabReadStreamOptions } from './HtabNodeStreams.js';
export { HtabLiveMigration, type HtabPass } from './HtabLiveMigration.js';
