import { execa } from 'execa';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gitExposureIssues, locationIssues, parseIsoTime } from '../src/cli/locations.ts';

describe('strict --now', () => {
  it.each([
    ['2027-01-31', '2027-01-31T00:00:00.000Z'],
    ['2027-01-31T12:00Z', '2027-01-31T12:00:00.000Z'],
    ['2027-01-31T12:00:00Z', '2027-01-31T12:00:00.000Z'],
    ['2027-01-31T12:00:00.5+01:00', '2027-01-31T11:00:00.500Z'],
    ['2028-02-29', '2028-02-29T00:00:00.000Z'],
  ])('accepts %s', (text, iso) => {
    const d = parseIsoTime(text);
    expect(d).toBeInstanceOf(Date);
    expect((d as Date).toISOString()).toBe(iso);
  });
  it.each([
    ['2027-02-30', 'has day 30, but 2027-02 has 28 days'],
    ['2027-02-29', 'has day 29, but 2027-02 has 28 days'],
    ['2027-13-01', 'has month 13'],
    ['2027-01-31T24:00:00Z', 'hours run 00-23'],
    ['2027-01-31T12:00:00', 'is not an ISO-8601 date or time with a zone'],
    ['31/01/2027', 'is not an ISO-8601'],
    ['2027-01-31T12:00:00+25:00', 'is not a UTC offset'],
    ['tomorrow', 'is not an ISO-8601'],
  ])('refuses %s', (text, message) => {
    expect(parseIsoTime(text)).toEqual(expect.stringContaining(message));
  });
});

describe('output and state folders', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'podmesh-loc-'));
    mkdirSync(join(dir, 'out'));
    symlinkSync(join(dir, 'out'), join(dir, 'out-link'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const at = (p: string) => join(dir, p);

  it.each([
    ['out', 'out/keys', 'is inside the output folder'],
    ['out', 'out', 'is the output folder'],
    ['out', 'out-link', 'is the output folder'],
    ['out', 'out-link/keys', 'is inside the output folder'],
    ['out/../out', 'out/x/..', 'is the output folder'],
    ['deploy/out', 'deploy', 'contains the output folder'],
  ])('--out %s with --state %s: %s', (out, state, message) => {
    const issues = locationIssues({ outDir: at(out), stateDir: at(state), stateSource: '--state' });
    expect(issues).toHaveLength(1);
    expect(issues[0]!.path).toBe('--state');
    expect(issues[0]!.message).toContain(message);
    expect(issues[0]!.message).toContain('--state .podmesh');
  });

  it('refuses empty names, naming the flag or variable', () => {
    expect(locationIssues({ outDir: '', stateDir: ' ', stateSource: '$PODMESH_STATE_DIR' }).map((i) => i.path)).toEqual(['--out', '$PODMESH_STATE_DIR']);
  });

  it('accepts folders side by side', () => {
    expect(locationIssues({ outDir: at('out'), stateDir: at('.podmesh'), stateSource: '--state' })).toEqual([]);
    expect(locationIssues({ outDir: at('out'), stateDir: at('outside'), stateSource: '--state' })).toEqual([]);
  });
});

describe('a state folder git would commit', () => {
  let repo: string;
  beforeAll(async () => {
    repo = mkdtempSync(join(tmpdir(), 'podmesh-git-'));
    await execa('git', ['init', '-q'], { cwd: repo });
    writeFileSync(join(repo, '.gitignore'), '.podmesh/\n');
  });
  afterAll(() => rmSync(repo, { recursive: true, force: true }));

  it('is refused with the .gitignore line to add; an ignored or outside one is fine', async () => {
    const exposed = await gitExposureIssues({ outDir: join(repo, 'out'), stateDir: join(repo, 'keys'), stateSource: '--state' });
    expect(exposed).toHaveLength(1);
    expect(exposed[0]!.message).toContain('git does not ignore it');
    expect(exposed[0]!.message).toContain('Add "keys/" to .gitignore');
    expect(await gitExposureIssues({ outDir: join(repo, 'out'), stateDir: join(repo, '.podmesh'), stateSource: '--state' })).toEqual([]);
    expect(await gitExposureIssues({ outDir: join(repo, 'out'), stateDir: join(repo, 'sub', '.podmesh'), stateSource: '--state' })).toEqual([]); // the pattern has no slash: any depth
    expect(await gitExposureIssues({ outDir: join(repo, 'out'), stateDir: join(repo, 'sub', 'state'), stateSource: '--state' })).toHaveLength(1);
    expect(await gitExposureIssues({ outDir: join(repo, 'out'), stateDir: join(tmpdir(), 'elsewhere-podmesh'), stateSource: '--state' })).toEqual([]);
  });
});
