import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HvmmuError } from '@hvmmu/core';
import { inspectImage, parseInspectArgs, runInspectImage } from '../src/commands/InspectImageCommand.js';

/** A 4-level image by hand: PML4 0x1000 → PDPT 0x2000 → PD 0x3000 → PT 0x4000; entries per SDM 4.5. */
function longModeImage(): Uint8Array {
  const image = new Uint8Array(0x10000);
  const v = new DataView(image.buffer);
  v.setUint32(0x1000, 0x2000 | 0x7, true); // PML4[0] P|W|U
  v.setUint32(0x2000, 0x3000 | 0x7, true); // PDPT[0]
  v.setUint32(0x3000, 0x4000 | 0x7, true); // PD[0] → PT
  v.setUint32(0x3008, 0x0020_0000 | 0x80 | 0x3, true); // PD[1]: 2 MiB page at 2 MiB, supervisor RW
  v.setUint32(0x4000 + 16 * 8, 0x8000 | 0x5, true); // PT[16]: va 0x10000 → 0x8000, user RO
  v.setUint32(0x4000 + 16 * 8 + 4, 0x8000_0000, true); //   … XD
  v.setUint32(0x4000 + 17 * 8, 0x9000 | 0x5, true); // PT[17]: va 0x11000 → 0x9000 (merges into the same run)
  v.setUint32(0x4000 + 17 * 8 + 4, 0x8000_0000, true);
  return image;
}

const LONG = { cr0: 0x8000_0011, cr3: 0x1000, cr4: 0x20, efer: 0xd00, maxPhyAddr: 40, maxRuns: 100 };

describe('hvmmu inspect-image', () => {
  it('lists the runs a hand-built 4-level image maps, with the access ANDed over levels', () => {
    const text = inspectImage(longModeImage(), LONG).join('\n');
    expect(text).toContain('2 runs');
    expect(text).toMatch(/0x000000010000\s+0x000000012000\s+0x8000\s+8 KiB\s+UR-/);
    expect(text).toMatch(/0x000000200000\s+0x000000400000\s+0x200000\s+2 MiB\s+SWX/);
  });

  it('without EFER.NXE the XD bit is reserved: those entries are counted and skipped (SDM 4.5)', () => {
    const text = inspectImage(longModeImage(), { ...LONG, efer: 0x500 }).join('\n');
    expect(text).toContain('1 runs');
    expect(text).toContain('2 reserved entries');
  });

  it('reads the image from a file given on the command line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hvmmu-inspect-'));
    const file = join(dir, 'ram.bin');
    writeFileSync(file, longModeImage());
    const lines = runInspectImage([file, '--cr0', '0x80000011', '--cr3', '0x1000', '--cr4', '0x20', '--efer', '0xd00']);
    expect(lines.join('\n')).toContain('2 runs');
  });

  it('refuses missing registers and bad numbers with HvmmuError', () => {
    expect(() => parseInspectArgs(['img', '--cr0', '1'])).toThrow(HvmmuError);
    expect(() => parseInspectArgs(['img', '--cr0', 'x', '--cr3', '0', '--cr4', '0', '--efer', '0'])).toThrow(/non-negative integer/);
  });
});
