import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HvmmuError } from '@hvmmu/core';
import { inspectImage, runInspectImage } from '../src/commands/InspectImageCommand.js';
import { EXIT, run } from '../src/HvmmuProgram.js';

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

  it('reads the image from a file given on the command line (--opt value and --opt=value)', async () => {
    const file = imageFile(longModeImage());
    const a = await cli([`inspect-image`, file, '--cr0', '0x80000011', '--cr3', '0x1000', '--cr4', '0x20', '--efer', '0xd00']);
    const b = await cli([`inspect-image`, file, '--cr0=0x80000011', '--cr3=0x1000', '--cr4=0x20', '--efer=0xd00']);
    expect([a.code, b.code]).toEqual([EXIT.OK, EXIT.OK]);
    expect(a.out).toContain('2 runs');
    expect(b.out).toBe(a.out);
  });

  it('bad usage and bad input exit 2 with a message: unknown option, missing or malformed value, no such file, empty image, CR3 outside it', async () => {
    const file = imageFile(longModeImage());
    const regs = ['--cr0', '0x80000011', '--cr3', '0x1000', '--cr4', '0x20', '--efer', '0xd00'];
    const cases: [string[], RegExp][] = [
      [['inspect-image', file, ...regs, '--bogus', '1'], /unknown option '--bogus'/],
      [['inspect-image', file, '--cr0', '1'], /required option '--cr3/],
      [['inspect-image', file, ...regs, '--cr4'], /argument missing|missing/],
      [['inspect-image', file, '--cr0', 'x', '--cr3', '0', '--cr4', '0', '--efer', '0'], /--cr0 must be a non-negative integer/],
      [['inspect-image', '/nonexistent/ram.bin', ...regs], /cannot read the memory image '\/nonexistent\/ram.bin': no such file/],
      [['inspect-image', imageFile(new Uint8Array(0)), ...regs], /is empty/],
      [
        ['inspect-image', file, '--cr0', '0x80000011', '--cr3', '0x100000', '--cr4', '0x20', '--efer', '0xd00'],
        /CR3 0x100000 points outside the 65536-byte image/,
      ],
      [['demo', '--bogus'], /unknown option '--bogus'/],
      [['frobnicate'], /unknown command|too many arguments/],
    ];
    for (const [argv, message] of cases) {
      const r = await cli(argv);
      expect(r.code, argv.join(' ')).toBe(EXIT.USAGE);
      expect(r.err, argv.join(' ')).toMatch(message);
    }
  });

  it('--help for the program and for each command, and --version, exit 0', async () => {
    for (const argv of [['--help'], ['help'], ['inspect-image', '--help'], ['demo', '--help'], ['--version']]) {
      const r = await cli(argv);
      expect(r.code, argv.join(' ')).toBe(EXIT.OK);
    }
    expect((await cli(['inspect-image', '--help'])).out).toContain('--cr3 <value>');
    expect((await cli(['--version'])).out.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('EFER with LME but not LMA (what GuestPageTables.controlRegisters gives) is 4-level paging once CR0.PG is set (SDM 9.8.5)', () => {
    const text = inspectImage(longModeImage(), { ...LONG, efer: 0x900 }).join('\n');
    expect(text).toContain('paging mode 4-level');
    expect(text).toContain('2 runs');
  });

  it("PAE PDPTEs with A set (QEMU's TCG sets it) are read as loaded, A clear, and say so", () => {
    const image = new Uint8Array(0x10000);
    const v = new DataView(image.buffer);
    v.setUint32(0x1000, 0x2000 | 0x1 | 0x20, true); // PDPTE[0]: P, A (reserved on Intel) → PD 0x2000
    v.setUint32(0x2000, 0x3000 | 0x7, true); // PD[0] → PT 0x3000
    v.setUint32(0x3000 + 5 * 8, 0x9000 | 0x7, true); // PT[5]: va 0x5000 → 0x9000 user RW
    const text = inspectImage(image, { cr0: 0x8000_0011, cr3: 0x1000, cr4: 0x20, efer: 0, maxPhyAddr: 36, maxRuns: 100 }).join('\n');
    expect(text).toContain('paging mode PAE');
    expect(text).toContain('A set');
    expect(text).toMatch(/0x000000005000\s+0x000000006000\s+0x9000\s+4 KiB\s+UWX/);
  });
});

function imageFile(bytes: Uint8Array): string {
  const dir = mkdtempSync(join(tmpdir(), 'hvmmu-inspect-'));
  const file = join(dir, 'ram.bin');
  writeFileSync(file, bytes);
  return file;
}

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await run(argv, {
    out: (s) => {
      out += s;
    },
    err: (s) => {
      err += s;
    },
  });
  return { code, out, err };
}
