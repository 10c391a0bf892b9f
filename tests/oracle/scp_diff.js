#!/usr/bin/env node
// scp_diff.js - the differential test of egressscan's SCP evaluator (README: "Intent and drift").
//
// A seeded generator builds random but realistic SCP hierarchies (root, 1-3 OUs, the account;
// FullAWSAccess or allow-lists per level; Deny statements with Action/NotAction,
// Resource/NotResource, and String*/...IfExists/Null/ForAnyValue/ForAllValues/Arn* conditions on
// eks:controlPlaneEgressMode, aws:RequestedRegion and aws:PrincipalArn). Every request the scanner
// asks about (CreateCluster with each egress mode and with the mode omitted, UpdateClusterConfig
// to CUSTOMER_ROUTED; two regions; four named principals and "any principal") is judged by
// egressscan's evaluator, in-process through build/tests/scp_eval_driver, and by an independent
// evaluator, the npm package @cloud-copilot/iam-simulate (pinned in package-lock.json; AGPL, a
// test-only dependency that is never shipped). Every verdict must agree.
//
//   node tests/oracle/scp_diff.js --driver build/tests/scp_eval_driver --cases 5000 --seed 1
//   node tests/oracle/scp_diff.js ... --show 17   (prints hierarchy 17 and its verdicts)
//
// A case is one verdict. For a named principal the oracle's answer is compared with egressscan's
// (allowed / denied). For "any principal" egressscan answers allowed, denied or
// principal-dependent: allowed and denied must hold for every named principal, and a
// principal-dependent verdict names a principal that may and one that may not, which the oracle
// must confirm.
//
// The oracle's quirks, handled here: aws:PrincipalArn must be passed in the request context
// explicitly; CreateCluster (no resource type) must be asked about resource "*" (as IAM does: the
// Service Authorization Reference lists no resource type for it); resourceControlPolicies: [] is
// required; context keys it does not know for the action are dropped silently (ignoredContextKeys:
// any makes the run fail); it matches resource ARNs case-insensitively where IAM does not ("In the
// Resource element, the IAM user name is case sensitive", IAM User Guide, "IAM JSON policy
// elements: Resource", https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html;
// egressscan matches case-sensitively), so every resource pattern generated here is in lower case
// (no case-only difference to judge: the one class where we believe the oracle is wrong).
//
// Classes not generated, and why:
// - Cluster-name-limited resources (arn:aws:eks:*:*:cluster/prod-*) for UpdateClusterConfig:
//   egressscan answers "may some cluster be switched to CUSTOMER_ROUTED" over every cluster name
//   (a Deny counts when it covers every name, an Allow when it covers some), the oracle judges one
//   named cluster; the two questions differ by design, not by a bug.
// - Condition keys other than the three above, policy variables, malformed documents: egressscan
//   reports them unevaluable (never guessed), so there is no verdict to compare.
// - Resource patterns in mixed case: see the oracle's quirks above.
// - Statements without Resource or NotResource: the oracle refuses the policy ("One of Resource or
//   NotResource is required in a service control policy"), as the IAM User Guide says ("Statements
//   must include either a Resource or a NotResource element", same page); egressscan reads an
//   absent Resource as "*" (lenient, documented in intent/scp.c). There is nothing to compare.
'use strict';

const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

let sim;
try {
  sim = require('@cloud-copilot/iam-simulate');
} catch (e) {
  console.error('scp_diff: the oracle is not installed: run `make oracle-deps` ' +
    '(npm ci in tests/oracle)');
  process.exit(2);
}

function parseArgs(argv) {
  const a = { cases: 5000, seed: 1, driver: 'build/tests/scp_eval_driver', show: -1,
    out: 'build/scp-diff-disagreements.jsonl', batch: 200 };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i], v = argv[i + 1];
    if (k === '--cases') { a.cases = parseInt(v, 10); i++; }
    else if (k === '--seed') { a.seed = parseInt(v, 10); i++; }
    else if (k === '--driver') { a.driver = v; i++; }
    else if (k === '--show') { a.show = parseInt(v, 10); i++; }
    else if (k === '--out') { a.out = v; i++; }
    else { console.error(`scp_diff: unknown argument ${k}`); process.exit(2); }
  }
  if (!(a.cases > 0) || !Number.isInteger(a.seed)) {
    console.error('scp_diff: --cases N (> 0) and --seed N (an integer)');
    process.exit(2);
  }
  return a;
}

// mulberry32: small, seeded, the same on every machine.
function rng(seed) {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n) => Math.floor(next() * n),
    pick: (arr) => arr[Math.floor(next() * arr.length)],
    chance: (p) => next() < p,
  };
}

const ACCOUNT = '111122223333';
const REGIONS = ['eu-west-1', 'us-east-1'];
const MODES = ['AWS_MANAGED', 'CUSTOMER_ROUTED', 'CUSTOMER_ISOLATED', null];
const PRINCIPALS = [
  `arn:aws:iam::${ACCOUNT}:role/OrgAdmin`,
  `arn:aws:iam::${ACCOUNT}:role/break-glass-ops`,
  `arn:aws:iam::${ACCOUNT}:role/EgressScanReadOnly`,
  `arn:aws:iam::${ACCOUNT}:user/alice`,
];
const FULL = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] };

// ---- the generator ----

const EGRESS_CONDS = [
  () => ({ StringNotEquals: { 'eks:controlPlaneEgressMode': 'CUSTOMER_ROUTED' } }),
  () => ({ StringNotEquals: { 'eks:controlPlaneEgressMode': ['CUSTOMER_ROUTED', 'CUSTOMER_ISOLATED'] } }),
  () => ({ StringEquals: { 'eks:controlPlaneEgressMode': 'AWS_MANAGED' } }),
  () => ({ StringEqualsIfExists: { 'eks:controlPlaneEgressMode': 'AWS_MANAGED' } }),
  () => ({ StringNotEqualsIfExists: { 'eks:controlPlaneEgressMode': 'CUSTOMER_ROUTED' } }),
  () => ({ StringLike: { 'eks:controlPlaneEgressMode': 'CUSTOMER_*' } }),
  () => ({ StringNotLike: { 'eks:controlPlaneEgressMode': 'CUSTOMER_*' } }),
  () => ({ StringLike: { 'eks:controlPlaneEgressMode': '*_MANAGED' } }),
  () => ({ StringEqualsIgnoreCase: { 'eks:controlPlaneEgressMode': 'aws_managed' } }),
  () => ({ StringNotEqualsIgnoreCase: { 'eks:controlPlaneEgressMode': 'customer_routed' } }),
  () => ({ Null: { 'eks:controlPlaneEgressMode': 'true' } }),
  () => ({ Null: { 'eks:controlPlaneEgressMode': 'false' } }),
  () => ({ 'ForAnyValue:StringEquals': { 'eks:controlPlaneEgressMode': ['AWS_MANAGED', 'CUSTOMER_ISOLATED'] } }),
  () => ({ 'ForAnyValue:StringNotEquals': { 'eks:controlPlaneEgressMode': 'CUSTOMER_ROUTED' } }),
  () => ({ 'ForAllValues:StringEquals': { 'eks:controlPlaneEgressMode': ['CUSTOMER_ROUTED'] } }),
  () => ({ 'ForAllValues:StringNotEquals': { 'eks:controlPlaneEgressMode': 'CUSTOMER_ROUTED' } }),
  () => ({ StringNotEquals: { 'eks:controlPlaneEgressMode': 'CUSTOMER_ROUTED' },
           Null: { 'eks:controlPlaneEgressMode': 'false' } }),
];
const REGION_CONDS = [
  () => ({ StringNotEquals: { 'aws:RequestedRegion': ['eu-west-1', 'eu-central-1'] } }),
  () => ({ StringEquals: { 'aws:RequestedRegion': 'us-east-1' } }),
  () => ({ StringNotLike: { 'aws:RequestedRegion': 'eu-*' } }),
  () => ({ StringLike: { 'aws:RequestedRegion': 'eu-*' } }),
  () => ({ StringNotEqualsIfExists: { 'aws:RequestedRegion': 'us-east-1' } }),
  () => ({ 'ForAnyValue:StringEquals': { 'aws:RequestedRegion': ['us-east-1', 'ap-south-1'] } }),
  () => ({ 'ForAllValues:StringLike': { 'aws:RequestedRegion': ['eu-*'] } }),
];
const PRINCIPAL_PATTERNS = [
  'arn:aws:iam::*:role/OrgAdmin',
  `arn:aws:iam::${ACCOUNT}:role/OrgAdmin`,
  'arn:aws:iam::*:role/break-glass-*',
  'arn:aws:iam::*:role/Egress*',
  'arn:aws:iam::*:role/*Admin',
  'arn:aws:iam::*:role/?rgAdmin',
  'arn:aws:iam::*:user/*',
  'arn:aws:iam::999999999999:role/*',
  'arn:aws:iam::*:role/*',
];
const PRINCIPAL_OPS = ['ArnNotLike', 'ArnLike', 'ArnNotEquals', 'ArnEquals', 'StringNotLike',
  'StringLike', 'ArnNotLikeIfExists', 'StringNotLikeIfExists'];
const EXACT_OPS = ['StringNotEquals', 'StringEquals', 'StringNotEqualsIgnoreCase'];

function principalCond(r) {
  if (r.chance(0.2)) {
    const arn = r.pick(PRINCIPALS.concat([`arn:aws:iam::${ACCOUNT}:role/orgadmin`]));
    return { [r.pick(EXACT_OPS)]: { 'aws:PrincipalArn': arn } };
  }
  const n = r.chance(0.25) ? 2 : 1;
  const vals = [];
  for (let i = 0; i < n; i++) vals.push(r.pick(PRINCIPAL_PATTERNS));
  return { [r.pick(PRINCIPAL_OPS)]: { 'aws:PrincipalArn': n === 1 ? vals[0] : vals } };
}

// Merges condition blocks (a repeated operator gets the keys of both).
function mergeConds(blocks) {
  const out = {};
  for (const b of blocks)
    for (const [op, keys] of Object.entries(b)) out[op] = Object.assign(out[op] || {}, keys);
  return out;
}

const ACTIONS = [
  { Action: 'eks:CreateCluster' },
  { Action: ['eks:CreateCluster', 'eks:UpdateClusterConfig'] },
  { Action: 'eks:*' },
  { Action: 'eks:Create*' },
  { Action: 'eks:UpdateClusterConfig' },
  { Action: 'EKS:createcluster' },
  { NotAction: ['iam:*', 'sts:*', 'organizations:*'] },
  { NotAction: 'eks:Describe*' },
  { NotAction: 'eks:*' },
  { Action: 's3:*' },
];
// all lower case (the oracle matches resources case-insensitively); none limited to some
// cluster names (see the header)
const RESOURCES = [
  { Resource: '*' },
  { Resource: 'arn:aws:eks:*:*:cluster/*' },
  { Resource: `arn:aws:eks:eu-west-1:${ACCOUNT}:cluster/*` },
  { Resource: 'arn:aws:eks:us-east-1:*:cluster/*' },
  { Resource: `arn:aws:eks:*:${ACCOUNT}:*` },
  { Resource: ['arn:aws:eks:*:*:cluster/*', '*'] },
  { Resource: 'arn:aws:eks:*:999999999999:cluster/*' },
  { NotResource: 'arn:aws:s3:::*' },
  { NotResource: 'arn:aws:eks:*:*:cluster/*' },
  { NotResource: `arn:aws:eks:us-east-1:${ACCOUNT}:cluster/*` },
];

function denyStatement(r, sid) {
  const st = Object.assign({ Sid: sid, Effect: 'Deny' }, r.pick(ACTIONS), r.pick(RESOURCES));
  const blocks = [];
  if (r.chance(0.75)) blocks.push(r.pick(EGRESS_CONDS)());
  if (r.chance(0.3)) blocks.push(r.pick(REGION_CONDS)());
  if (r.chance(0.45)) blocks.push(principalCond(r));
  if (blocks.length) st.Condition = mergeConds(blocks);
  return st;
}

function allowStatement(r, sid) {
  const st = Object.assign({ Sid: sid, Effect: 'Allow' },
    r.pick([{ Action: 'eks:*' }, { Action: ['eks:*', 'ec2:*'] }, { Action: 'eks:Create*' },
      { Action: 'eks:UpdateClusterConfig' }, { Action: '*' }, { NotAction: 'iam:*' },
      { Action: 'ec2:*' }]),
    r.pick(RESOURCES.slice(0, 7)));
  if (r.chance(0.25)) {
    const blocks = [r.chance(0.6) ? r.pick(EGRESS_CONDS)() : r.pick(REGION_CONDS)()];
    if (r.chance(0.3)) blocks.push(principalCond(r));
    st.Condition = mergeConds(blocks);
  }
  return st;
}

// One hierarchy: root, 1-3 OUs, the account.
function hierarchy(seed, index) {
  const r = rng((seed * 1000003 + index * 7919) >>> 0);
  const nOu = 1 + r.int(3);
  const targets = ['r-ab12'];
  for (let i = 0; i < nOu; i++) targets.push(`ou-ab12-${String(i + 1).repeat(8)}`);
  targets.push(ACCOUNT);
  let pid = 0;
  const levels = targets.map((target) => {
    const docs = [];
    if (r.chance(0.8)) {
      docs.push({ id: `p-full${pid++}`, policy: FULL });
    } else {
      const n = 1 + r.int(2);
      const stmts = [];
      for (let i = 0; i < n; i++) stmts.push(allowStatement(r, `A${i}`));
      docs.push({ id: `p-allow${pid++}`, policy: { Version: '2012-10-17', Statement: stmts } });
    }
    const nDeny = r.chance(0.5) ? r.int(3) : 0;
    for (let d = 0; d < nDeny; d++) {
      const stmts = [];
      const n = 1 + r.int(3);
      for (let i = 0; i < n; i++) stmts.push(denyStatement(r, `D${i}`));
      docs.push({ id: `p-deny${pid++}`, policy: { Version: '2012-10-17', Statement: stmts } });
    }
    return { target, docs };
  });
  return levels;
}

// The requests of one hierarchy: [action, mode, region, principal (null: any)].
function requests() {
  const out = [];
  for (const region of REGIONS)
    for (const principal of PRINCIPALS.concat([null])) {
      for (const mode of MODES) out.push({ action: 'eks:CreateCluster', mode, region, principal });
      out.push({ action: 'eks:UpdateClusterConfig', mode: 'CUSTOMER_ROUTED', region, principal });
    }
  return out;
}

// ---- the oracle ----

async function oracle(levels, req, principal) {
  const context = { 'aws:RequestedRegion': req.region, 'aws:PrincipalArn': principal };
  if (req.mode) context['eks:controlPlaneEgressMode'] = req.mode;
  const resource = req.action === 'eks:CreateCluster'
    ? '*' : `arn:aws:eks:${req.region}:${ACCOUNT}:cluster/demo`;
  const simulation = {
    request: { principal, action: req.action, resource: { resource, accountId: ACCOUNT },
      contextVariables: context },
    identityPolicies: [{ name: 'identity', policy: FULL }],
    serviceControlPolicies: levels.map((lv) => ({
      orgIdentifier: lv.target, policies: lv.docs.map((d) => ({ name: d.id, policy: d.policy })),
    })),
    resourceControlPolicies: [],
  };
  const res = await sim.runSimulation(simulation, {});
  if (res.resultType !== 'single')
    throw new Error(`oracle: ${res.resultType}: ${JSON.stringify(res.errors || res).slice(0, 400)}`);
  const ignored = res.result.ignoredContextKeys || [];
  if (ignored.length)
    throw new Error(`oracle dropped context keys ${ignored.join(', ')} for ${req.action}`);
  return res.overallResult === 'Allowed' ? 'allowed' : 'denied';
}

// ---- egressscan, through the driver ----

function driverRun(driver, batch) {
  const lines = batch.map((h) => JSON.stringify({
    account: ACCOUNT, partition: 'aws',
    levels: h.levels.map((lv) => ({ target: lv.target,
      docs: lv.docs.map((d) => ({ id: d.id, content: JSON.stringify(d.policy) })) })),
    requests: h.requests,
  }));
  const res = spawnSync(driver, [], { input: lines.join('\n') + '\n', maxBuffer: 1 << 30 });
  if (res.error || res.status !== 0)
    throw new Error(`driver ${driver}: ${res.error || `status ${res.status}`} ` +
      `${String(res.stderr || '').slice(0, 400)}`);
  const out = String(res.stdout).trim().split('\n').map((l) => JSON.parse(l));
  if (out.length !== batch.length) throw new Error('driver: one line per hierarchy expected');
  return out.map((o) => o.verdicts);
}

async function main() {
  const a = parseArgs(process.argv);
  if (!fs.existsSync(a.driver)) {
    console.error(`scp_diff: no driver at ${a.driver} (make ${a.driver})`);
    process.exit(2);
  }
  const perHierarchy = requests().length;
  const nHier = a.show >= 0 ? 1 : Math.ceil(a.cases / perHierarchy);
  const t0 = process.hrtime.bigint();
  let cases = 0, agree = 0, sims = 0;
  const byKind = {};
  const verdictCount = {};
  const bad = [];
  for (let start = 0; start < nHier; start += a.batch) {
    const batch = [];
    for (let i = start; i < Math.min(nHier, start + a.batch); i++) {
      const idx = a.show >= 0 ? a.show : i;
      batch.push({ index: idx, levels: hierarchy(a.seed, idx), requests: requests() });
    }
    const verdicts = driverRun(a.driver, batch);
    for (let b = 0; b < batch.length; b++) {
      const h = batch[b];
      const known = new Map(); // "req|principal" -> oracle verdict
      const ask = async (req, principal) => {
        const key = `${req.action}|${req.mode}|${req.region}|${principal}`;
        if (!known.has(key)) { known.set(key, await oracle(h.levels, req, principal)); sims++; }
        return known.get(key);
      };
      for (let k = 0; k < h.requests.length; k++) {
        const req = h.requests[k];
        const es = verdicts[b][k];
        let ok, want;
        if (req.principal) {
          want = await ask(req, req.principal);
          ok = es.verdict === want;
        } else {
          // any principal: the named ones, and the examples egressscan gives
          const named = [];
          for (const p of PRINCIPALS) named.push(await ask(req, p));
          if (es.verdict === 'allowed' || es.verdict === 'denied') {
            want = named.every((v) => v === es.verdict) ? es.verdict : `not all ${es.verdict}`;
            ok = want === es.verdict;
          } else if (es.verdict === 'principal-dependent') {
            const al = es.allowed_principal ? await ask(req, es.allowed_principal) : null;
            const de = es.denied_principal ? await ask(req, es.denied_principal) : null;
            want = `allowed example ${al}, denied example ${de}`;
            ok = al === 'allowed' && de === 'denied';
          } else {
            want = 'allowed or denied (nothing generated is unevaluable)';
            ok = false;
          }
        }
        cases++;
        verdictCount[es.verdict] = (verdictCount[es.verdict] || 0) + 1;
        const kind = `${req.action}${req.principal ? '' : ' (any principal)'}`;
        byKind[kind] = byKind[kind] || [0, 0];
        byKind[kind][0]++;
        if (ok) { agree++; byKind[kind][1]++; }
        else bad.push({ seed: a.seed, hierarchy: h.index, request: req, egressscan: es,
          oracle: want, levels: h.levels });
        if (a.show >= 0)
          console.log(`${ok ? 'agree   ' : 'DISAGREE'} ${req.action} ${req.mode || 'omitted'} ` +
            `${req.region} ${req.principal || '(any)'}: egressscan ${es.verdict}` +
            `${es.reason ? ` (${es.reason})` : ''}, oracle ${want}`);
      }
    }
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (a.show >= 0) console.log(JSON.stringify(hierarchy(a.seed, a.show), null, 1));
  console.log(`scp_diff: seed ${a.seed}: ${nHier} hierarchies, ${cases} cases (verdicts), ` +
    `${agree} agree, ${cases - agree} disagree; ${sims} oracle simulations; ` +
    `${secs.toFixed(1)} s, ${Math.round(cases / secs)} cases/s`);
  for (const [k, [n, ok]] of Object.entries(byKind)) console.log(`  ${k}: ${ok}/${n} agree`);
  console.log(`  egressscan's verdicts: ${Object.entries(verdictCount).map(([v, n]) => `${v} ${n}`)
    .join(', ')}`);
  if (bad.length) {
    fs.mkdirSync(path.dirname(a.out), { recursive: true });
    fs.writeFileSync(a.out, bad.map((x) => JSON.stringify(x)).join('\n') + '\n');
    for (const x of bad.slice(0, 5))
      console.log(`DISAGREE hierarchy ${x.hierarchy} (--seed ${x.seed} --show ${x.hierarchy}): ` +
        `${JSON.stringify(x.request)}: egressscan ${JSON.stringify(x.egressscan)}, ` +
        `oracle ${x.oracle}`);
    console.log(`all ${bad.length} disagreements in ${a.out}`);
    process.exit(1);
  }
}

main().catch((e) => { console.error(`scp_diff: ${e.stack || e}`); process.exit(2); });
