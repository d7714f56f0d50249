#!/usr/bin/env node
import '@hvmmu/core';
console.log('hvmmu: demo under construction');
