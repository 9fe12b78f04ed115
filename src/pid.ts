/** Whether a process still runs, by its pid (for records a process leaves behind: pid files, uploads). */

/** True while process `pid` exists (one of another user's too: EPERM). */
export function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
