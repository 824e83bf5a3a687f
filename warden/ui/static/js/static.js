// Pages without data of their own (not allowed, not found): ready at once.
import {markReady} from './api.js';

markReady();
