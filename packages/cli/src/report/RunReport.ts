import type { WorkloadRunResult } from '../workloads/WorkloadRunResult.js';
import { TextTable, formatNumber, percent } from './TextTable.js';

/** `hvmmu run`'s text output: what ran, the counts, and the backend's own statistics that are not zero. */
export function renderRunReport(r: WorkloadRunResult): string[] {
  const f = r.faults;
  const k = f.vmmByKind;
  const lines = [
    `hvmmu run: ${r.workload} on ${r.backend} (guest paging ${r.pagingMode}, ${r.vcpus} vCPU${r.vcpus === 1 ? '' : 's'})`,
    '',
    `  operations          ${formatNumber(r.operations)}`,
    `  accesses            ${formatNumber(r.accesses)} in ${formatNumber(r.elapsedMs)} ms (${formatNumber(r.accessesPerSecond)} per second)`,
    `  TLB hits / misses   ${formatNumber(r.tlbHits)} / ${formatNumber(r.tlbMisses)} (hit rate ${percent(r.tlbHits, r.tlbHits + r.tlbMisses)})`,
    `  guest faults        ${formatNumber(f.guest)}${f.guestResolved === 0 ? '' : ` (${formatNumber(f.guestResolved)} resolved by the guest kernel on its own)`}`,
    `  hypervisor faults   ${formatNumber(f.hypervisor)}${f.hypervisorResolved === 0 ? '' : ` (${formatNumber(f.hypervisorResolved)} resolved by the guest's hypervisor)`}`,
    `  VMM exits           ${formatNumber(f.vmm)}${f.vmm === 0 ? '' : ` (no memory ${k.noMemory}, read-only ${k.readOnly}, emulate ${k.emulate}, retry limit ${k.retryLimit}, host out of memory ${k.hostOutOfMemory})`}`,
    `  guest OS            ${formatNumber(r.guest.maps)} maps, ${formatNumber(r.guest.unmaps)} unmaps, ${formatNumber(r.guest.protects)} protects, ${formatNumber(r.guest.spacesCreated)} spaces created, ${formatNumber(r.guest.spaceSwitches)} switches, ${formatNumber(r.guest.tablePages)} table pages${r.guest.kernelTlbMisses + r.guest.kernelTlbHits === 0 ? '' : `, its own TLB hits / misses ${formatNumber(r.guest.kernelTlbHits)} / ${formatNumber(r.guest.kernelTlbMisses)}`}`,
    `  host                ${formatNumber(r.host.memslotChanges)} memslot changes, ${formatNumber(r.host.pagesInvalidated)} pages invalidated (${formatNumber(r.host.mappingsDropped)} mappings dropped), ${formatNumber(r.host.dirtyPagesHarvested)} dirty pages harvested`,
  ];
  const table = new TextTable(['backend statistic', 'value']);
  let shown = 0;
  for (const [name, value] of Object.entries(r.backendStats)) {
    if (value === 0) continue;
    table.add([name, value]);
    shown++;
  }
  if (shown > 0) lines.push('', table.render());
  return lines;
}
