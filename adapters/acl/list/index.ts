// The list checker adapter: whitelists and blacklists of strings, patterns or IP ranges (Mixer's `listchecker`).
import { LISTENTRY } from '../../../templates';
import { defineAdapter } from '../../contract';
import { LIST_CONFIG, validateListConfig } from './config';
import { createListCheckerHandler } from './handler';

export const LISTCHECKER = defineAdapter({
  name: 'listchecker',
  description:
    'Checks whether a value is in a list (whitelist or blacklist), fetched from a URL or configured inline',
  templates: [LISTENTRY.name],
  config: LIST_CONFIG,
  validate: validateListConfig,
  build: createListCheckerHandler,
});
