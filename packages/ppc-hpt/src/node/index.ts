export { HtabReadStream, HtabWriteStream, type HtabReadStreamOptions } from './HtabNodeStreams.js';
