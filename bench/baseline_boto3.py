"""The scanner a user would otherwise write: boto3, a ThreadPoolExecutor of 64 workers, one
client per account x region, standard retries. Used by `make bench` as the baseline egressscan
is measured against, on the same fake AWS and fleet.

Environment: AWS_ENDPOINT_URL (the fake), AWS_CA_BUNDLE (its CA), AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY (base credentials), AWS_DATA_PATH (models that know the egress mode).
Prints one JSON line: wall_s, cpu_s, api_calls, clusters, peak_rss_kib.
"""
import json
import os
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config

ROLE = os.environ.get("ROLE_NAME", "EgressScanReadOnly")
HOME_REGION = os.environ.get("AWS_REGION", "us-east-1")
CONFIG = Config(retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=10)
calls = 0


def count(*_args, **_kwargs):
    global calls
    calls += 1  # approximate under threads (the GIL makes += mostly safe); good enough


def client(session, service, region, creds=None):
    kw = {}
    if creds:
        kw = dict(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                  aws_session_token=creds["SessionToken"])
    c = session.client(service, region_name=region, config=CONFIG, **kw)
    c.meta.events.register("before-send", count)
    return c


def accounts(session):
    org = client(session, "organizations", "us-east-1")
    for page in org.get_paginator("list_accounts").paginate():
        for a in page["Accounts"]:
            if a["Status"] == "ACTIVE":
                yield a["Id"]


def scan_region(session, creds, account, region):
    eks = client(session, "eks", region, creds)
    found = []
    for page in eks.get_paginator("list_clusters").paginate():
        for name in page["clusters"]:
            c = eks.describe_cluster(name=name)["cluster"]
            found.append((account, region, name, c["resourcesVpcConfig"].get("controlPlaneEgressMode")))
    return found


def scan_account(session, account, pool):
    sts = client(session, "sts", HOME_REGION)
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{ROLE}",
                            RoleSessionName="baseline")["Credentials"]
    ec2 = client(session, "ec2", HOME_REGION, creds)
    regions = [r["RegionName"] for r in ec2.describe_regions()["Regions"]]
    return [pool.submit(scan_region, session, creds, account, r) for r in regions]


def main():
    t0 = time.monotonic()
    session = boto3.session.Session()
    clusters = 0
    with ThreadPoolExecutor(max_workers=64) as pool:
        account_futures = [pool.submit(scan_account, session, a, pool) for a in accounts(session)]
        region_futures = []
        for f in account_futures:
            region_futures.extend(f.result())
        for f in region_futures:
            clusters += len(f.result())
    wall = time.monotonic() - t0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"wall_s": round(wall, 3), "cpu_s": round(ru.ru_utime + ru.ru_stime, 3),
                      "api_calls": calls, "clusters": clusters, "peak_rss_kib": ru.ru_maxrss}))


if __name__ == "__main__":
    sys.exit(main())
