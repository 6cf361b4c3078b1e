#!/usr/bin/env node
// Thin launcher: the compiled entry point does all the work.
import '../dist/src/main.js';
