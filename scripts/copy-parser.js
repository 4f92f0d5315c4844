// Copies the Peggy-generated parser next to the compiled modules in dist/
// (tsc emits only what it compiles; the parser is plain JavaScript).
import { copyFileSync, mkdirSync } from 'node:fs';

mkdirSync('dist/src/lang/generated', { recursive: true });
copyFileSync('src/lang/generated/parser.js', 'dist/src/lang/generated/parser.js');
