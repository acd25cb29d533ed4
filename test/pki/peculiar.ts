// @peculiar/x509 as an independent parser of what the engine writes; its DI container needs Reflect metadata first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';

export { x509 };
