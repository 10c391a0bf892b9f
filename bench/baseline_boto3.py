"""The scanner a user would otherwise write: boto3, a ThreadPoolExecutor of 64 workers, one
client per account x region, standard retries. Used by `make bench` as the baseline egressscan
is measured against, on the same fake AWS and fleet.

Environment: AWS_ENDPOINT_URL (the fake), AWS_CA_BUNDLE (its CA), AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY (base credentials), AWS_DATA_PATH (models that know the egress mode).
Prints one JSON line: wall_s, cpu_s, api_calls, clusters, errors, peak_rss_kib. With
--clusters-out FILE it also writes every cluster found, one JSON object a line (account, region,
name, arn, egress_mode), so that the benchmark can check that the baseline did the whole job.
"""
import argparse
import itertools
import json
import os
import resource
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

ROLE = os.environ.get("ROLE_NAME", "EgressScanReadOnly")
HOME_REGION = os.environ.get("AWS_REGION", "us-east-1")
WORKERS = 64
CONFIG = Config(retries={"mode": "standard", "max_attempts": 3})

# Every HTTP attempt, counted without a race: itertools.count's next() is atomic under the GIL.
_attempts = itertools.count()
# A boto3 session is not thread safe, its clients are: one shared session (its loaded service
# models are shared too), clients created under a lock.
_session = boto3.session.Session()
_session_lock = threading.Lock()


def count(**_kwargs):
    next(_attempts)


def client(service, region, creds=None):
    kw = {}
    if creds:
        kw = dict(aws_access_key_id=creds["AccessKeyId"],
                  aws_secret_access_key=creds["SecretAccessKey"],
                  aws_session_token=creds["SessionToken"])
    with _session_lock:
        c = _session.client(service, region_name=region, config=CONFIG, **kw)
    c.meta.events.register("before-send", count)
    return c


def accounts():
    org = client("organizations", "us-east-1")
    for page in org.get_paginator("list_accounts").paginate():
        for a in page["Accounts"]:
            if a["Status"] == "ACTIVE":
                yield a["Id"]


def scan_region(creds, account, region):
    eks = client("eks", region, creds)
    found = []
    for page in eks.get_paginator("list_clusters").paginate():
        for name in page["clusters"]:
            c = eks.describe_cluster(name=name)["cluster"]
            found.append({"account": account, "region": region, "name": name, "arn": c["arn"],
                          "egress_mode": c["resourcesVpcConfig"].get("controlPlaneEgressMode")})
    return found


def scan_account(account, pool):
    sts = client("sts", HOME_REGION)
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{ROLE}",
                            RoleSessionName="baseline")["Credentials"]
    ec2 = client("ec2", HOME_REGION, creds)
    regions = [r["RegionName"] for r in ec2.describe_regions()["Regions"]]
    return [(account, r, pool.submit(scan_region, creds, account, r)) for r in regions]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clusters-out", help="write the clusters found here (JSON lines)")
    args = ap.parse_args()

    t0 = time.monotonic()
    clusters, errors = [], []
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        # accounts stream in page by page; each account fans out into one task per region
        account_futures = [(a, pool.submit(scan_account, a, pool)) for a in accounts()]
        region_futures = []
        for account, f in account_futures:
            try:
                region_futures.extend(f.result())
            except (ClientError, BotoCoreError) as e:
                errors.append({"account": account, "region": "*", "error": str(e)})
        for account, region, f in region_futures:
            try:
                clusters.extend(f.result())
            except (ClientError, BotoCoreError) as e:
                errors.append({"account": account, "region": region, "error": str(e)})
    wall = time.monotonic() - t0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    if args.clusters_out:
        with open(args.clusters_out, "w") as f:
            for c in clusters:
                f.write(json.dumps(c) + "\n")
    for e in errors[:5]:
        print(f"baseline: {e['account']} {e['region']}: {e['error']}", file=sys.stderr)
    print(json.dumps({"wall_s": round(wall, 3), "cpu_s": round(ru.ru_utime + ru.ru_stime, 3),
                      "api_calls": next(_attempts), "clusters": len(clusters),
                      "errors": len(errors), "peak_rss_kib": ru.ru_maxrss}))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
