// Every valid HPTE of a hashed page table, translated back to the effective address it serves
// through an SLB: the virtual address is recovered from the AVPN and the PTEG number (the hash run
// backwards, as KVM's HPT resize and compute_tlbie_rb do), the segment is the SLB entry with that
// VSID and segment size, and the page sizes come from the segment's base size and the HPTE's
// L/LP encoding (POWER ISA v2.07 Book III 5.7; QEMU ppc_hash64_xlate). An MPSS entry (e.g. 64K
// base in a 16M page) serves one base page of effective addresses, hashed by that base page.
import { hex, inputError, pageSizeText, parseU64 } from '../InspectInput.js';
import { hex16, type InspectMapping } from '../InspectResult.js';
import type { PpcHptPackage } from '../PpcPackages.js';
import type { HashPageTable, Slb } from '@hvmmu/ppc-hpt';
import { readFileSync } from 'node:fs';

/** One SLB slot as slbmte writes it: RB = ESID word | slot, RS = VSID word. */
export interface SlbEntryInput {
  readonly slot: number;
  readonly esidWord: bigint;
  readonly vsidWord: bigint;
}

export interface HptInspectOptions {
  readonly slb: readonly SlbEntryInput[];
  readonly maxLeaves: number;
  readonly tree: boolean;
  readonly msr: bigint;
  readonly amr: bigint;
  readonly iamr: bigint;
  readonly translate: readonly bigint[];
}

const SLB_ESID_V = 0x0800_0000n;
const SEG_256M = 0xffff_ffff_f000_0000n;
const SEG_1T = 0xffff_ff00_0000_0000n;
const SLB_VSID_VSID = 0x3fff_ffff_ffff_f000n;
const HPTE_V_AVPN = 0x3fff_ffff_ffff_ff80n;
const HPTE_R_RPN = 0x0fff_ffff_ffff_f000n;

/**
 * The SLB from `--slb FILE` (a JSON array of { slot?, esidWord, vsidWord } as hex strings, or an
 * object of such arrays picked by `key`, like fixtures/ppc-hpt/slb.json) and `--slbe ESID,VSID`.
 */
export function readSlb(file: string | undefined, key: string | undefined, slbe: readonly string[]): SlbEntryInput[] {
  const out: SlbEntryInput[] = [];
  if (file !== undefined) {
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      const code = (error as { code?: string }).code;
      throw inputError(`cannot read the SLB file '${file}': ${code === 'ENOENT' ? 'no such file' : (error as Error).message}`);
    }
    let list: unknown = json;
    if (!Array.isArray(json)) {
      if (json === null || typeof json !== 'object')
        throw inputError(`the SLB file '${file}' must hold a JSON array of SLB entries or an object of such arrays`);
      const keys = Object.keys(json).filter((k) => Array.isArray((json as Record<string, unknown>)[k]));
      const pick = key ?? (keys.length === 1 ? keys[0] : undefined);
      if (pick === undefined || !keys.includes(pick)) {
        throw inputError(
          `the SLB file '${file}' holds several SLBs (${keys.join(', ')}): pick one with --slb-key NAME${key === undefined ? '' : ` ('${key}' is not one)`}`,
        );
      }
      list = (json as Record<string, unknown>)[pick];
    }
    (list as unknown[]).forEach((e, i) => {
      const where = `the SLB file '${file}', entry ${i}`;
      if (e === null || typeof e !== 'object') throw inputError(`${where}: expected an object with esidWord and vsidWord`);
      const r = e as Record<string, unknown>;
      if (typeof r.esidWord !== 'string' || typeof r.vsidWord !== 'string') throw inputError(`${where}: esidWord and vsidWord must be hex strings`);
      const slot = r.slot === undefined ? i : r.slot;
      if (typeof slot !== 'number' || !Number.isInteger(slot) || slot < 0 || slot > 31) throw inputError(`${where}: slot must be an integer 0..31`);
      out.push({ slot, esidWord: parseU64(`${where} esidWord`, hexPrefixed(r.esidWord)), vsidWord: parseU64(`${where} vsidWord`, hexPrefixed(r.vsidWord)) });
    });
  }
  for (const text of slbe) {
    const parts = text.split(',');
    if (parts.length !== 2) throw inputError(`--slbe must be ESID,VSID (the slbmte RB and RS words, hex), got '${text}'`);
    const used = new Set(out.map((e) => e.slot));
    let slot = 0;
    while (used.has(slot)) slot++;
    if (slot > 31) throw inputError('more than 32 SLB entries');
    out.push({ slot, esidWord: parseU64('--slbe ESID', hexPrefixed(parts[0]!)) & ~0xfffn, vsidWord: parseU64('--slbe VSID', hexPrefixed(parts[1]!)) });
  }
  return out;
}

function hexPrefixed(text: string): string {
  const t = text.trim();
  return /^0x/i.test(t) ? t : `0x${t}`;
}

interface Segment {
  readonly slot: number;
  readonly oneT: boolean;
  readonly vsid: bigint;
  readonly eaBase: bigint;
  readonly vsidWord: bigint;
  readonly baseShift: number;
}

export interface HptInspection {
  readonly mappings: InspectMapping[];
  readonly summary: Record<string, string | number | boolean>;
  readonly notes: string[];
  readonly tree: string[] | null;
  readonly translations: { ea: string; ra: string | null }[];
}

/** PP0||PP under key k: r, w (with r), x (with r) before N/G (QEMU ppc_hash64_pte_prot). */
function ppRights(pp: number, key: number): { r: boolean; w: boolean } {
  if (key === 0) return { r: pp <= 3 || pp === 6, w: pp <= 2 };
  return { r: pp === 1 || pp === 2 || pp === 3, w: pp === 2 };
}

export function hpteFlags(d0: bigint, d1: bigint): string {
  const b = (v: bigint, c: string): string => (v !== 0n ? c : '-');
  const pp = Number(((d1 >> 63n) << 2n) | (d1 & 3n));
  return (
    b(d0 >> 62n, 'B') +
    b(d0 & 4n, 'L') +
    b(d0 & 2n, 'H') +
    b(d0 & 0x10n, 'b') +
    b(d1 & 0x100n, 'R') +
    b(d1 & 0x80n, 'C') +
    b(d1 & 0x40n, 'W') +
    b(d1 & 0x20n, 'I') +
    b(d1 & 0x10n, 'M') +
    b(d1 & 8n, 'G') +
    b(d1 & 4n, 'N') +
    String(pp)
  );
}

export function inspectHpt(ppc: PpcHptPackage, hpt: HashPageTable, o: HptInspectOptions): HptInspection {
  const slb = new ppc.Slb(32);
  const segments = new Map<string, Segment>();
  for (const e of o.slb) {
    if ((e.esidWord & SLB_ESID_V) === 0n) continue;
    if (!slb.slbmteBig(e.esidWord | BigInt(e.slot), e.vsidWord))
      throw inputError(
        `SLB slot ${e.slot}: ESID ${hex(e.esidWord)} VSID ${hex(e.vsidWord)} is not an entry slbmte accepts (reserved B, ESID bits, or an unsupported L||LP)`,
      );
    const oneT = e.vsidWord >> 62n === 1n;
    const vsid = (e.vsidWord & SLB_VSID_VSID) >> (oneT ? 24n : 12n);
    const sps = ppc.segmentPageSize(Number(e.vsidWord & 0xffff_ffffn))!;
    const k = `${oneT ? 'T' : 'M'}${vsid.toString(16)}`;
    // The first slot wins, as slb_lookup searches in slot order.
    if (!segments.has(k))
      segments.set(k, { slot: e.slot, oneT, vsid, eaBase: e.esidWord & (oneT ? SEG_1T : SEG_256M), vsidWord: e.vsidWord, baseShift: sps.baseShift });
  }

  const view = hpt.view;
  const mask = BigInt(hpt.hashMask);
  const mappings: InspectMapping[] = [];
  const bySegment = new Map<number, string[]>();
  let valid = 0;
  let noSegment = 0;
  let foreign = 0;
  let truncated = false;
  const withoutSegment: number[] = [];
  const bytes = hpt.bytes;
  for (let index = 0; index < hpt.entries; index++) {
    if ((bytes[index * 16 + 7]! & 1) === 0) continue;
    valid++;
    const d0 = view.getBigUint64(index * 16, false);
    const d1 = view.getBigUint64(index * 16 + 8, false);
    const oneT = d0 >> 62n === 1n;
    const avpn = (d0 & HPTE_V_AVPN) >> 7n;
    const vsid = oneT ? avpn >> 17n : avpn >> 5n;
    const seg = segments.get(`${oneT ? 'T' : 'M'}${vsid.toString(16)}`);
    if (seg === undefined) {
      noSegment++;
      if (withoutSegment.length < 10) withoutSegment.push(index);
      continue;
    }
    const sps = ppc.segmentPageSize(Number(seg.vsidWord & 0xffff_ffffn))!;
    const actual = ppc.hptePageShift(sps, Number(d0 & 0xffff_ffffn), Number(d1 >> 32n), Number(d1 & 0xffff_ffffn));
    if (actual === 0) {
      // An L/LP encoding the segment does not have: the hardware skips the entry (Linux leaves such entries after a demotion).
      foreign++;
      continue;
    }
    const base = seg.baseShift;
    let group = BigInt(index >> 3);
    if ((d0 & 2n) !== 0n) group = ~group & mask;
    const segBits = oneT ? 40n : 28n;
    let off = oneT ? (avpn & 0x1ffffn) << 23n : (avpn & 0x1fn) << 23n;
    if (base < 23) off |= ((oneT ? vsid ^ (vsid << 25n) ^ group : vsid ^ group) & mask) << BigInt(base);
    off &= (1n << segBits) - 1n;
    off &= ~((1n << BigInt(base)) - 1n);
    const ea = seg.eaBase | off;
    const actualMask = (1n << BigInt(actual)) - 1n;
    const ra = (d1 & HPTE_R_RPN & ~actualMask) | (off & actualMask);
    const pp = Number(((d1 >> 63n) << 2n) | (d1 & 3n));
    const key = Number(((d1 >> 57n) & 0x18n) | ((d1 >> 9n) & 7n));
    const noExec = (d1 & 0xcn) !== 0n || (seg.vsidWord & 0x200n) !== 0n;
    const rights = (k: number): string => {
      const r = ppRights(pp, k);
      return `${r.r ? 'r' : '-'}${r.w ? 'w' : '-'}${r.r && !noExec ? 'x' : '-'}`;
    };
    const ks = Number((seg.vsidWord >> 11n) & 1n);
    const kp = Number((seg.vsidWord >> 10n) & 1n);
    if (mappings.length >= o.maxLeaves) {
      truncated = true;
      break;
    }
    const m: InspectMapping = {
      va: hex(ea),
      vaEnd: hex(ea + (1n << BigInt(base))),
      pa: hex(ra),
      pageSize: base === actual ? pageSizeText(base) : `${pageSizeText(base)}/${pageSizeText(actual)}`,
      user: rights(kp),
      supervisor: rights(ks),
      flags: hpteFlags(d0, d1),
      detail: {
        index,
        pteg: hex(index >> 3),
        secondary: (d0 & 2n) !== 0n,
        dword0: hex(d0),
        dword1: hex(d1),
        virtualAddress: hex((vsid << segBits) | off),
        pp,
        key,
        slbSlot: seg.slot,
        baseShift: base,
        actualShift: actual,
      },
    };
    mappings.push(m);
    if (o.tree) {
      const lines = bySegment.get(seg.slot) ?? [];
      lines.push(
        `    PTEG ${hex(index >> 3)}${(d0 & 2n) !== 0n ? ' (secondary)' : ''} [${index & 7}] HPTE ${hex(index)} ${hex16(d0)} ${hex16(d1)} -> ${m.va} .. ${m.vaEnd} -> ${m.pa} ${m.pageSize} ${m.flags}`,
      );
      bySegment.set(seg.slot, lines);
    }
  }
  mappings.sort((a, b) => (BigInt(a.va) < BigInt(b.va) ? -1 : BigInt(a.va) > BigInt(b.va) ? 1 : 0));

  const notes: string[] = [];
  if (noSegment > 0)
    notes.push(
      `${noSegment} valid HPTEs have no SLB entry with their VSID (not reachable through this SLB; e.g. index ${withoutSegment.map((i) => hex(i)).join(', ')})`,
    );
  if (foreign > 0) notes.push(`${foreign} valid HPTEs have a page-size encoding their segment does not use (the hardware skips them)`);
  let tree: string[] | null = null;
  if (o.tree) {
    tree = [`HPT order ${hpt.order} (${hpt.entries} HPTEs, ${hpt.hashMask + 1} PTEGs)`];
    for (const seg of [...segments.values()].sort((a, b) => a.slot - b.slot)) {
      tree.push(
        `  SLB[${seg.slot}] ESID ${hex(seg.eaBase)} ${seg.oneT ? '1T' : '256M'} VSID ${hex(seg.vsid)} base ${pageSizeText(seg.baseShift)} Ks=${(seg.vsidWord >> 11n) & 1n} Kp=${(seg.vsidWord >> 10n) & 1n} N=${(seg.vsidWord >> 9n) & 1n}`,
      );
      tree.push(...(bySegment.get(seg.slot) ?? []));
    }
  }

  const translations: { ea: string; ra: string | null }[] = [];
  if (o.translate.length > 0) {
    const regs = new ppc.HptRegisters().setAmr(o.amr).setIamr(o.iamr);
    regs.hv = ((o.msr >> 60n) & 1n) === 1n;
    regs.pr = ((o.msr >> 14n) & 1n) === 1n;
    regs.ir = ((o.msr >> 5n) & 1n) === 1n;
    regs.dr = ((o.msr >> 4n) & 1n) === 1n;
    regs.virtualHypervisor = true;
    for (const ea of o.translate) {
      const ra = ppc.hptDebugTranslate(regs, slb as Slb, hpt, ea);
      translations.push({ ea: hex(ea), ra: ra === null ? null : hex(ra) });
    }
  }
  return {
    mappings,
    summary: {
      order: hpt.order,
      entries: hpt.entries,
      valid,
      listed: mappings.length,
      withoutSegment: noSegment,
      foreignPageSize: foreign,
      slbEntries: segments.size,
      truncated,
    },
    notes,
    tree,
    translations,
  };
}
