// Process facts from /proc: parent links, CPU ticks and resident memory.
// Reading /proc directly keeps the bench free of `ps` parsing and lets it
// sum CPU over exactly the processes of one contender.
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';

let clockTicks = null;

// USER_HZ: the unit of utime/stime in /proc/<pid>/stat (proc(5)).
function ticksPerSecond() {
  if (clockTicks === null) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

// Fields of /proc/<pid>/stat after the command name, which may itself hold
// spaces and parentheses, so split after the last ')'.
export function readStat(pid) {
  let text;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return {
    pid,
    state: rest[0],
    ppid: Number(rest[1]),
    pgrp: Number(rest[2]),
    utime: Number(rest[11]),
    stime: Number(rest[12]),
    starttime: Number(rest[19]),
  };
}

export function isAlive(pid) {
  const st = readStat(pid);
  return st !== null && st.state !== 'Z' && st.state !== 'X';
}

// Resident set size in bytes (VmRSS), or null if the process is gone.
export function rssBytes(pid) {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

// Private memory in bytes (Private_Clean + Private_Dirty of smaps_rollup): the
// pages only this process maps. RSS also counts the node binary's pages that
// are shared with every other node process, so it overstates what one more
// process costs; null if the process is gone or the kernel lacks the file.
export function privateBytes(pid) {
  try {
    const text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    let kb = 0;
    for (const m of text.matchAll(/^Private_(?:Clean|Dirty):\s+(\d+)\s+kB/gm)) kb += Number(m[1]);
    return kb * 1024;
  } catch {
    return null;
  }
}

function allStats() {
  const out = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = readStat(Number(name));
    if (st) out.push(st);
  }
  return out;
}

// Every live descendant of root (not root itself).
export function descendants(root) {
  const children = new Map();
  for (const st of allStats()) {
    if (st.state === 'Z') continue;
    if (!children.has(st.ppid)) children.set(st.ppid, []);
    children.get(st.ppid).push(st.pid);
  }
  const out = [];
  const queue = [...(children.get(root) || [])];
  while (queue.length) {
    const pid = queue.shift();
    out.push(pid);
    queue.push(...(children.get(pid) || []));
  }
  return out;
}

// CPU time (user + system) of each pid, in ticks; missing pids are skipped.
export function cpuTicks(pids) {
  const out = new Map();
  for (const pid of pids) {
    const st = readStat(pid);
    if (st) out.set(pid, { ticks: st.utime + st.stime, starttime: st.starttime });
  }
  return out;
}

// CPU seconds spent between two cpuTicks() snapshots by the processes in
// `after`. A pid absent from `before` (or reused: another start time) is
// counted from zero, since it started during the window.
export function cpuSecondsBetween(before, after) {
  let ticks = 0;
  for (const [pid, a] of after) {
    const b = before.get(pid);
    ticks += b && b.starttime === a.starttime ? a.ticks - b.ticks : a.ticks;
  }
  return ticks / ticksPerSecond();
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
