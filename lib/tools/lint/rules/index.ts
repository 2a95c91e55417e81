/** Every rule `npm run lint:k8s` applies, by id. */
import type { Rule } from '../model';
import { AVAILABILITY_RULES } from './availability';
import { CONTAINER_RULES } from './containers';
import { POD_RULES } from './pods';
import { SELECTOR_RULES } from './selectors';

export const RULES: readonly Rule[] = [...CONTAINER_RULES, ...POD_RULES, ...AVAILABILITY_RULES, ...SELECTOR_RULES];
