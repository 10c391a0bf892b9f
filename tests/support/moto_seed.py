"""Builds a fleet in a moto server for egressscan's integration tests and demo.

Reads a fleet description (JSON) and creates, with moto's signature checks off: an organization,
its OU tree, member accounts, SCPs and their targets, an IAM user for the scanner (with an access
key) in the management account, the scanner's read-only role in every account, and EKS clusters
with the given egress modes (a cluster without "mode" is created without the field).
Prints what it made as JSON on stdout (ids, the scanner's keys, cluster ARNs).

Usage (AWS_DATA_PATH=tests/data/aws-models, signature checks off):
  moto_seed.py --endpoint URL FLEET.json                 build the fleet, print what was made
  moto_seed.py --endpoint URL --list REGION,...           every cluster of every account (JSON)
  moto_seed.py --endpoint URL --set-mode ACCT REGION NAME MODE
  moto_seed.py --endpoint URL --delete ACCT REGION NAME
  moto_seed.py --endpoint URL --create ACCT REGION NAME MODE   (MODE "-": created without the field)
  moto_seed.py --endpoint URL --deny-assume ACCT,...|-    the scanner user may not assume the role
                                                          in these accounts ("-": in none)
  moto_seed.py --endpoint URL --deny-org-reader ACTION,...|-   explicit Deny of these actions on the
                                                          org reader role ("-": none)
  moto_seed.py --endpoint URL --remove-account ACCT       remove_account_from_organization
  moto_seed.py --endpoint URL --readmit-account ACCT      InviteAccountToOrganization (the launcher
                                                          readmits a removed account at once)
  moto_seed.py --endpoint URL --attach-scp POLICY_ID TARGET_ID / --detach-scp POLICY_ID TARGET_ID

Fleet file:
{
  "role_name": "EgressScanReadOnly",
  "ous": [{"name": "Prod", "parent": "root"}, {"name": "Regulated", "parent": "Prod"}],
  "accounts": [{"name": "payments", "ou": "Regulated", "deny_assume": false, "no_role": false,
                "clusters": [{"name": "c1", "region": "eu-west-1", "mode": "CUSTOMER_ROUTED"}]}],
  "management_clusters": [{"name": "m1", "region": "us-east-1", "mode": "AWS_MANAGED"}],
  "org_reader_role": "EgressScanOrgReader",   (optional: a role in the management account that
                                               may read Organizations, for --org-role-arn)
  "scps": [{"name": "enforce", "content": {...}, "targets": ["root", "ou:Prod", "account:payments"]}]
}
"""
import argparse
import json
import sys

import boto3

ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
READ_ONLY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow",
                   "Action": ["eks:ListClusters", "eks:DescribeCluster", "ec2:DescribeRegions"],
                   "Resource": "*"}],
}
TRUST_ANY = {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}


def client(service, endpoint, region="us-east-1", creds=None):
    kw = dict(endpoint_url=endpoint, region_name=region)
    if creds:
        kw.update(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                  aws_session_token=creds.get("SessionToken"))
    else:
        kw.update(aws_access_key_id="AKIAIOSFODNN7SEEDING", aws_secret_access_key="seeding-only")
    return boto3.client(service, **kw)


def create_cluster(endpoint, creds, account_id, c):
    vpc = {"subnetIds": ["subnet-0a1b2c3d"], "endpointPublicAccess": c.get("public", True),
           "endpointPrivateAccess": c.get("private", False)}
    if c.get("mode") is not None:
        vpc["controlPlaneEgressMode"] = c["mode"]
    eks = client("eks", endpoint, c["region"], creds)
    args = dict(name=c["name"], roleArn=f"arn:aws:iam::{account_id}:role/eks-cluster",
                resourcesVpcConfig=vpc, version=c.get("version", "1.31"))
    if c.get("tags"):
        args["tags"] = c["tags"]
    return eks.create_cluster(**args)["cluster"]["arn"]


def admin_creds(ep, account_id):
    if account_id == client("organizations", ep).describe_organization()["Organization"]["MasterAccountId"]:
        return None
    return client("sts", ep).assume_role(
        RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole",
        RoleSessionName="seeding")["Credentials"]


def scanner_policy(denied_role_arns):
    """The scanner user's inline policy: everything, less AssumeRole of the given roles."""
    policy = {"Version": "2012-10-17", "Statement": [ALLOW_ALL["Statement"][0]]}
    if denied_role_arns:
        policy["Statement"].append({"Effect": "Deny", "Action": "sts:AssumeRole",
                                    "Resource": denied_role_arns})
    return json.dumps(policy)


def list_all(ep, regions):
    """Every cluster of every account, listed independently of egressscan."""
    org = client("organizations", ep)
    out = []
    for page in org.get_paginator("list_accounts").paginate():
        for acct in page["Accounts"]:
            creds = admin_creds(ep, acct["Id"])
            for region in regions:
                eks = client("eks", ep, region, creds)
                for name in eks.list_clusters()["clusters"]:
                    c = eks.describe_cluster(name=name)["cluster"]
                    out.append({"account_id": acct["Id"], "account_name": acct["Name"], "region": region,
                                "name": name, "arn": c["arn"],
                                "mode": c["resourcesVpcConfig"].get("controlPlaneEgressMode")})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--list", metavar="REGIONS")
    ap.add_argument("--set-mode", nargs=4, metavar=("ACCOUNT", "REGION", "NAME", "MODE"))
    ap.add_argument("--delete", nargs=3, metavar=("ACCOUNT", "REGION", "NAME"))
    ap.add_argument("--create", nargs=4, metavar=("ACCOUNT", "REGION", "NAME", "MODE"))
    ap.add_argument("--deny-assume", metavar="ACCOUNTS")
    ap.add_argument("--role-name", default="EgressScanReadOnly")
    ap.add_argument("--deny-org-reader", metavar="ACTIONS")
    ap.add_argument("--org-reader-role", default="EgressScanOrgReader")
    ap.add_argument("--remove-account", metavar="ACCOUNT")
    ap.add_argument("--readmit-account", metavar="ACCOUNT")
    ap.add_argument("--attach-scp", nargs=2, metavar=("POLICY_ID", "TARGET_ID"))
    ap.add_argument("--detach-scp", nargs=2, metavar=("POLICY_ID", "TARGET_ID"))
    ap.add_argument("fleet", nargs="?")
    a = ap.parse_args()
    if a.list:
        json.dump(list_all(a.endpoint, a.list.split(",")), sys.stdout, indent=1)
        print()
        return
    if a.set_mode:
        acct, region, name, mode = a.set_mode
        eks = client("eks", a.endpoint, region, admin_creds(a.endpoint, acct))
        vpc = eks.describe_cluster(name=name)["cluster"]["resourcesVpcConfig"]
        vpc = {k: v for k, v in vpc.items() if k in ("subnetIds", "securityGroupIds", "endpointPublicAccess",
                                                      "endpointPrivateAccess", "publicAccessCidrs")}
        vpc["controlPlaneEgressMode"] = mode
        eks.update_cluster_config(name=name, resourcesVpcConfig=vpc)
        return
    if a.delete:
        acct, region, name = a.delete
        client("eks", a.endpoint, region, admin_creds(a.endpoint, acct)).delete_cluster(name=name)
        return
    if a.create:
        acct, region, name, mode = a.create
        create_cluster(a.endpoint, admin_creds(a.endpoint, acct), acct,
                       {"name": name, "region": region, "mode": None if mode == "-" else mode})
        return
    if a.deny_assume:
        accts = [] if a.deny_assume == "-" else a.deny_assume.split(",")
        client("iam", a.endpoint).put_user_policy(
            UserName="egressscan", PolicyName="scanner",
            PolicyDocument=scanner_policy([f"arn:aws:iam::{n}:role/{a.role_name}" for n in accts]))
        return
    if a.deny_org_reader:
        iam = client("iam", a.endpoint)
        if a.deny_org_reader == "-":
            iam.delete_role_policy(RoleName=a.org_reader_role, PolicyName="deny")
        else:
            iam.put_role_policy(RoleName=a.org_reader_role, PolicyName="deny", PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [
                    {"Effect": "Deny", "Action": a.deny_org_reader.split(","), "Resource": "*"}]}))
        return
    if a.remove_account:
        client("organizations", a.endpoint).remove_account_from_organization(AccountId=a.remove_account)
        return
    if a.readmit_account:
        client("organizations", a.endpoint).invite_account_to_organization(
            Target={"Id": a.readmit_account, "Type": "ACCOUNT"})
        return
    if a.attach_scp:
        client("organizations", a.endpoint).attach_policy(PolicyId=a.attach_scp[0], TargetId=a.attach_scp[1])
        return
    if a.detach_scp:
        client("organizations", a.endpoint).detach_policy(PolicyId=a.detach_scp[0], TargetId=a.detach_scp[1])
        return
    with open(a.fleet) as f:
        fleet = json.load(f)
    ep = a.endpoint
    role_name = fleet.get("role_name", "EgressScanReadOnly")

    org = client("organizations", ep)
    mgmt = org.create_organization(FeatureSet="ALL")["Organization"]["MasterAccountId"]
    root = org.list_roots()["Roots"][0]["Id"]
    ous = {"root": root}
    for ou in fleet.get("ous", []):
        parent = ous[ou.get("parent", "root")]
        ous[ou["name"]] = org.create_organizational_unit(ParentId=parent, Name=ou["name"])[
            "OrganizationalUnit"]["Id"]

    iam = client("iam", ep)
    iam.create_user(UserName="egressscan")
    key = iam.create_access_key(UserName="egressscan")["AccessKey"]
    denied = [a2["name"] for a2 in fleet.get("accounts", []) if a2.get("deny_assume")]
    accounts, out_clusters = {}, []
    sts = client("sts", ep)
    for acct in fleet.get("accounts", []):
        st = org.create_account(Email=f"{acct['name']}@example.com", AccountName=acct["name"])
        aid = st["CreateAccountStatus"]["AccountId"]
        accounts[acct["name"]] = aid
        if acct.get("ou"):
            org.move_account(AccountId=aid, SourceParentId=root, DestinationParentId=ous[acct["ou"]])
        admin = sts.assume_role(RoleArn=f"arn:aws:iam::{aid}:role/OrganizationAccountAccessRole",
                                RoleSessionName="seeding")["Credentials"]
        if not acct.get("no_role"):
            miam = client("iam", ep, creds=admin)
            miam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(TRUST_ANY))
            miam.put_role_policy(RoleName=role_name, PolicyName="egressscan-read-only",
                                 PolicyDocument=json.dumps(READ_ONLY))
        for c in acct.get("clusters", []):
            out_clusters.append(create_cluster(ep, admin, aid, c))
    iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(TRUST_ANY))
    iam.put_role_policy(RoleName=role_name, PolicyName="egressscan-read-only", PolicyDocument=json.dumps(READ_ONLY))
    for c in fleet.get("management_clusters", []):
        out_clusters.append(create_cluster(ep, None, mgmt, c))

    iam.put_user_policy(UserName="egressscan", PolicyName="scanner", PolicyDocument=scanner_policy(
        [f"arn:aws:iam::{accounts[n]}:role/{role_name}" for n in denied]))
    org_role_arn = None
    if fleet.get("org_reader_role"):
        iam.create_role(RoleName=fleet["org_reader_role"], AssumeRolePolicyDocument=json.dumps(TRUST_ANY))
        iam.put_role_policy(RoleName=fleet["org_reader_role"], PolicyName="read-organizations",
                            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                                {"Effect": "Allow", "Action": ["organizations:Describe*", "organizations:List*"],
                                 "Resource": "*"}]}))
        org_role_arn = f"arn:aws:iam::{mgmt}:role/{fleet['org_reader_role']}"

    scps = {}
    for p in fleet.get("scps", []):
        pid = org.create_policy(Content=json.dumps(p["content"]), Description=p.get("description", p["name"]),
                                Name=p["name"], Type="SERVICE_CONTROL_POLICY")["Policy"]["PolicySummary"]["Id"]
        scps[p["name"]] = pid
        for t in p.get("targets", []):
            kind, _, name = t.partition(":")
            target = root if kind == "root" else ous[name] if kind == "ou" else accounts[name]
            org.attach_policy(PolicyId=pid, TargetId=target)

    json.dump({"management_account_id": mgmt, "root_id": root, "ous": ous, "accounts": accounts,
               "scps": scps, "clusters": out_clusters, "access_key_id": key["AccessKeyId"],
               "secret_access_key": key["SecretAccessKey"], "role_name": role_name,
               "org_role_arn": org_role_arn}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
