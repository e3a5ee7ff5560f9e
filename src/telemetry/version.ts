// The package's version, inlined by the build (only this field of package.json is bundled).
import { version } from '../../package.json';

export const VERSION: string = version;
