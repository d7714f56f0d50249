// @hvmmu/ppc-radix installed with only @hvmmu/core: the README's radix translation, and a fault.
import { FlatGuestMemory } from '@hvmmu/core';
import { Dsisr, RadixAccess, RadixRegisters, RadixTranslation, RadixTreeBuilder, RadixVector, RadixWalker } from '@hvmmu/ppc-radix';

const memory = new FlatGuestMemory(new ArrayBuffer(16 << 20));
const tables = new RadixTreeBuilder(memory, 8 << 20, 4 << 20);
const processTable = tables.createProcessTable();
const kernel = tables.createTree('64k');
kernel.map(0x10_0000, 0x40_0000, 16, { read: true });
processTable.setProcess(0, kernel);
const [prtbHi, prtbLo] = processTable.pointer();
const regs = new RadixRegisters().setVirtualHypervisorPate(1n << 63n, (BigInt(prtbHi) << 32n) | BigInt(prtbLo));
const out = new RadixTranslation();
const walker = new RadixWalker(memory);
if (!walker.translate(regs, 0xc000_0000, 0x10_1234, RadixAccess.LOAD, out) || out.ra !== 0x40_1234) throw new Error('load did not translate');
// A store to a read-only page: DSI, DSISR = PROTFAULT | STORE (POWER ISA v3.0 Book III 7.5.3).
if (walker.translate(regs, 0xc000_0000, 0x10_1234, RadixAccess.STORE, out) || out.vector !== RadixVector.DSI || out.cause !== (Dsisr.PROTFAULT | Dsisr.STORE)) {
  throw new Error(`expected DSI PROTFAULT|STORE, got vector ${out.vector} cause ${out.cause}`);
}
console.log('ppc-radix-only smoke: ok');
