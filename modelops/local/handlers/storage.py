"""KMS keys and aliases, S3 buckets with their settings and objects, the Glue catalogue."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from modelops.graph.resource_types import (
    BUCKET, BUCKET_LIFECYCLE, BUCKET_METRIC, BUCKET_OBJECT, BUCKET_OWNERSHIP, BUCKET_PAB,
    BUCKET_POLICY, BUCKET_SSE, BUCKET_VERSIONING, GLUE_DATABASE, GLUE_TABLE, KMS_ALIAS, KMS_KEY,
)
from modelops.errors import ApplyError
from modelops.local.handlers.base import (
    Context,
    Handler,
    drop_none,
    handler,
    is_not_found,
    pascal,
    plain,
    tag_list,
    validate_request,
)


def _policy_text(policy: Any) -> str:
    return policy if isinstance(policy, str) else json.dumps(policy)


# --- KMS ---------------------------------------------------------------------------------------


@handler
class KmsKey(Handler):
    token = KMS_KEY

    def create(self, ctx: Context, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        kms = ctx.client("kms")
        meta = kms.create_key(
            **drop_none(
                Description=inputs.get("description"),
                KeyUsage=inputs.get("keyUsage"),
                KeySpec=inputs.get("customerMasterKeySpec"),
                Policy=_policy_text(inputs["policy"]) if inputs.get("policy") else None,
                MultiRegion=inputs.get("multiRegion"),
                Tags=[{"TagKey": t["Key"], "TagValue": t["Value"]} for t in tag_list(inputs.get("tags"))],
            )
        )["KeyMetadata"]
        key_id = meta["KeyId"]
        if inputs.get("enableKeyRotation"):
            kms.enable_key_rotation(KeyId=key_id)
        return key_id, {"arn": meta["Arn"], "keyId": key_id}

    def update(self, ctx: Context, id_: str, old: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        kms = ctx.client("kms")
        if inputs.get("description") != old.get("description"):
            kms.update_key_description(KeyId=id_, Description=inputs.get("description") or "")
        if bool(inputs.get("enableKeyRotation")) != bool(old.get("enableKeyRotation")):
            (kms.enable_key_rotation if inputs.get("enableKeyRotation") else kms.disable_key_rotation)(KeyId=id_)
        if inputs.get("policy") and inputs.get("policy") != old.get("policy"):
            kms.put_key_policy(KeyId=id_, PolicyName="default", Policy=_policy_text(inputs["policy"]))
        meta = kms.describe_key(KeyId=id_)["KeyMetadata"]
        return {"arn": meta["Arn"], "keyId": id_}

    def delete(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> None:
        # KMS never deletes at once: the key is scheduled, as `pulumi destroy` does it.
        ctx.client("kms").schedule_key_deletion(
            KeyId=id_, PendingWindowInDays=int(outputs.get("deletionWindowInDays") or 30)
        )

    def exists(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> bool:
        meta = ctx.client("kms").describe_key(KeyId=id_)["KeyMetadata"]
        return meta["KeyState"] not in ("PendingDeletion", "PendingReplicaDeletion")

    def recover(self, ctx: Context, physical: str, inputs: dict[str, Any], recorded: set[str]) -> bool:
        # A key has no name: an unrecorded, enabled customer key with this description and
        # these tags (both name the project and environment) is what the interrupted create made.
        kms = ctx.client("kms")
        wanted = sorted((t["Key"], t["Value"]) for t in tag_list(inputs.get("tags")))
        found = False
        for page in kms.get_paginator("list_keys").paginate():
            for entry in page["Keys"]:
                if entry["KeyId"] in recorded:
                    continue
                meta = kms.describe_key(KeyId=entry["KeyId"])["KeyMetadata"]
                if meta.get("KeyManager") != "CUSTOMER" or meta["KeyState"] in ("PendingDeletion", "PendingReplicaDeletion"):
                    continue
                if meta.get("Description", "") != (inputs.get("description") or ""):
                    continue
                tags = sorted((t["TagKey"], t["TagValue"]) for t in kms.list_resource_tags(KeyId=entry["KeyId"])["Tags"])
                if tags == wanted:
                    self.delete(ctx, entry["KeyId"], inputs)
                    found = True
        return found


@handler
class KmsAlias(Handler):
    token = KMS_ALIAS
    name_key = "name"

    def physical_name(self, name: str, inputs: dict[str, Any], previous: str | None) -> str | None:
        return inputs.get("name") or previous or f"alias/{name}"

    def create(self, ctx: Context, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        ctx.client("kms").create_alias(AliasName=name, TargetKeyId=inputs["targetKeyId"])
        return name, self._outputs(ctx, name)

    def _outputs(self, ctx: Context, name: str) -> dict[str, Any]:
        alias = next(a for a in ctx.client("kms").list_aliases()["Aliases"] if a["AliasName"] == name)
        key_arn = ctx.client("kms").describe_key(KeyId=alias["TargetKeyId"])["KeyMetadata"]["Arn"]
        return {"name": name, "arn": alias["AliasArn"], "targetKeyArn": key_arn}

    def update(self, ctx: Context, id_: str, old: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        ctx.client("kms").update_alias(AliasName=id_, TargetKeyId=inputs["targetKeyId"])
        return self._outputs(ctx, id_)

    def delete(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> None:
        ctx.client("kms").delete_alias(AliasName=id_)

    def exists(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> bool:
        return any(a["AliasName"] == id_ for a in ctx.client("kms").list_aliases()["Aliases"])


# --- S3 ----------------------------------------------------------------------------------------


@handler
class Bucket(Handler):
    token = BUCKET
    name_key = "bucket"

    def create(self, ctx: Context, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        s3 = ctx.client("s3")
        params: dict[str, Any] = {"Bucket": name}
        if ctx.region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": ctx.region}
        if inputs.get("objectLockEnabled"):
            params["ObjectLockEnabledForBucket"] = True
        s3.create_bucket(**params)
        self._tags(ctx, name, inputs)
        return name, self._outputs(ctx, name)

    def _tags(self, ctx: Context, name: str, inputs: dict[str, Any]) -> None:
        if inputs.get("tags"):
            ctx.client("s3").put_bucket_tagging(Bucket=name, Tagging={"TagSet": tag_list(inputs["tags"])})

    def _outputs(self, ctx: Context, name: str) -> dict[str, Any]:
        return {
            "bucket": name,
            "arn": f"arn:aws:s3:::{name}",
            "bucketDomainName": f"{name}.s3.amazonaws.com",
            "bucketRegionalDomainName": f"{name}.s3.{ctx.region}.amazonaws.com",
            "bucketRegion": ctx.region,
            "region": ctx.region,
        }

    def update(self, ctx: Context, id_: str, old: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        if inputs.get("tags"):
            self._tags(ctx, id_, inputs)
        else:
            ctx.client("s3").delete_bucket_tagging(Bucket=id_)
        return self._outputs(ctx, id_)

    def delete(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> None:
        s3 = ctx.client("s3")
        if outputs.get("forceDestroy") or ctx.empty_buckets:
            _purge(s3, id_, prefix="")
        for prefix in ctx.output_prefixes.get(id_, ()):
            _purge(s3, id_, prefix=prefix)  # what the endpoints and monitor jobs this destroy removes wrote
        try:
            s3.delete_bucket(Bucket=id_)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "BucketNotEmpty":
                raise
            # as in AWS, data nobody declared is never deleted silently: say how to opt in
            raise ApplyError(
                f"bucket {id_} still holds objects ModelOps did not put there (uploads, capture of endpoints "
                "no longer declared); nothing else in it was deleted. Copy what you need, then run destroy "
                "again with --empty-buckets"
            ) from exc

    def exists(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> bool:
        ctx.client("s3").head_bucket(Bucket=id_)
        return True

    def label(self, id_: str, outputs: dict[str, Any]) -> str:
        return id_


def _purge(s3: Any, bucket: str, prefix: str, exact_key: str | None = None) -> None:
    """Delete every version and delete marker under ``prefix`` (of ``exact_key`` only, if given).

    Listed again until nothing is left: a versioning change racing with the deletes (both
    happen in one destroy wave) can leave a fresh delete marker behind.
    """
    for _ in range(5):
        doomed: list[dict[str, str]] = []
        paginator = s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=bucket, Prefix=exact_key or prefix):
            doomed += [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
                if exact_key is None or v["Key"] == exact_key
            ]
        if not doomed:
            return
        for start in range(0, len(doomed), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed[start : start + 1000], "Quiet": True})


class _BucketSetting(Handler):
    """A bucket sub-resource that is a PUT of one document: update is the same PUT."""

    def put(self, ctx: Context, bucket: str, inputs: dict[str, Any]) -> None:
        raise NotImplementedError

    def get(self, ctx: Context, bucket: str) -> Any:
        raise NotImplementedError

    def create(self, ctx: Context, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        bucket = inputs["bucket"]
        self.put(ctx, bucket, inputs)
        return bucket, {"bucket": bucket}

    def update(self, ctx: Context, id_: str, old: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        self.put(ctx, id_, inputs)
        return {"bucket": id_}

    def exists(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> bool:
        return bool(self.get(ctx, id_))

    def label(self, id_: str, outputs: dict[str, Any]) -> str:
        return id_


@handler
class BucketVersioning(_BucketSetting):
    token = BUCKET_VERSIONING

    def put(self, ctx: Context, bucket: str, inputs: dict[str, Any]) -> None:
        config = pascal(inputs["versioningConfiguration"], {"mfaDelete": "MFADelete"})
        ctx.client("s3").put_bucket_versioning(Bucket=bucket, VersioningConfiguration=config)

    def get(self, ctx: Context, bucket: str) -> Any:
        return ctx.client("s3").get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled"

    def delete(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> None:
        # S3 cannot un-version a bucket; the provider suspends versioning, and so do we.
        ctx.client("s3").put_bucket_versioning(Bucket=id_, VersioningConfiguration={"Status": "Suspended"})

    def exists(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> bool:
        try:
            return bool(self.get(ctx, id_))
        except ClientError as exc:
            if is_not_found(exc):
                return False
            raise


@handler
class BucketEncryption(_BucketSetting):
    token = BUCKET_SSE

    def put(self, ctx: Context, bucket: str, inputs: dict[str, Any]) -> None:
        rules = pascal(inputs["rules"])
        ctx.client("s3").put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": rules})

    def get(self, ctx: Context, bucket: str) -> Any:
        return ctx.client("s3").get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]

    def delete(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> None:
        ctx.client("s3").delete_bucket_encryption(Bucket=id_)


@handler
class BucketPublicAccessBlock(_BucketSetting):
    token = BUCKET_PAB

    def put(self, ctx: Context, bucket: str, inputs: dict[str, Any]) -> None:
        config = {
            "BlockPublicAcls": bool(inputs.get("blockPublicAcls")),
            "BlockPublicPolicy": bool(inputs.get("blockPublicPolicy")),
            "IgnorePublicAcls": bool(inputs.get("ignorePublicAcls")),
            "RestrictPublicBuckets": bool(inputs.get("restrictPublicBuckets")),
        }
        ctx.client("s3").put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=config)

    def get(self, ctx: Context, bucket: str) -> Any:
        return ctx.client("s3").get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]

    def delete(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> None:
        ctx.client("s3").delete_public_access_block(Bucket=id_)


@handler
class BucketOwnershipControls(_BucketSetting):
    token = BUCKET_OWNERSHIP

    def put(self, ctx: Context, bucket: str, inputs: dict[str, Any]) -> None:
        rule = pascal(inputs["rule"])
        ctx.client("s3").put_bucket_ownership_controls(Bucket=bucket, OwnershipControls={"Rules": [rule]})

    def get(self, ctx: Context, bucket: str) -> Any:
        return ctx.client("s3").get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]

    def delete(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> None:
        ctx.client("s3").delete_bucket_ownership_controls(Bucket=id_)


@handler
class BucketPolicy(_BucketSetting):
    token = BUCKET_POLICY

    def put(self, ctx: Context, bucket: str, inputs: dict[str, Any]) -> None:
        # The exact document we deploy to AWS; the embedded emulator evaluates its conditions.
        ctx.client("s3").put_bucket_policy(Bucket=bucket, Policy=_policy_text(inputs["policy"]))

    def get(self, ctx: Context, bucket: str) -> Any:
        return ctx.client("s3").get_bucket_policy(Bucket=bucket)["Policy"]

    def delete(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> None:
        ctx.client("s3").delete_bucket_policy(Bucket=id_)


def lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """One pulumi_aws lifecycle rule as the S3 API's ``LifecycleRule``."""
    out: dict[str, Any] = {"ID": rule.get("id"), "Status": rule.get("status", "Enabled")}
    flt = rule.get("filter")
    if flt:
        converted = pascal(flt, {"and": "And"})
        if "And" in converted and "Tags" in converted["And"] and isinstance(converted["And"]["Tags"], dict):
            converted["And"]["Tags"] = tag_list(converted["And"]["Tags"])
        out["Filter"] = converted
    elif rule.get("prefix") is not None:
        out["Filter"] = {"Prefix": rule["prefix"]}
    else:
        out["Filter"] = {"Prefix": ""}
    for key, target in (
        ("expiration", "Expiration"),
        ("noncurrentVersionExpiration", "NoncurrentVersionExpiration"),
        ("abortIncompleteMultipartUpload", "AbortIncompleteMultipartUpload"),
    ):
        if rule.get(key):
            out[target] = pascal(rule[key])
    for key, target in (("transitions", "Transitions"), ("noncurrentVersionTransitions", "NoncurrentVersionTransitions")):
        if rule.get(key):
            out[target] = pascal(rule[key])
    return {k: v for k, v in out.items() if v is not None}


@handler
class BucketLifecycleConfiguration(_BucketSetting):
    token = BUCKET_LIFECYCLE

    def put(self, ctx: Context, bucket: str, inputs: dict[str, Any]) -> None:
        rules = [lifecycle_rule(r) for r in inputs["rules"]]
        params: dict[str, Any] = {"Bucket": bucket, "LifecycleConfiguration": {"Rules": rules}}
        if inputs.get("transitionDefaultMinimumObjectSize"):
            params["TransitionDefaultMinimumObjectSize"] = inputs["transitionDefaultMinimumObjectSize"]
        ctx.client("s3").put_bucket_lifecycle_configuration(**params)

    def get(self, ctx: Context, bucket: str) -> Any:
        return ctx.client("s3").get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]

    def delete(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> None:
        ctx.client("s3").delete_bucket_lifecycle(Bucket=id_)


@handler
class BucketObject(Handler):
    token = BUCKET_OBJECT

    def _put(self, ctx: Context, inputs: dict[str, Any]) -> dict[str, Any]:
        source = inputs.get("source")
        if source is not None:
            with open(source.path, "rb") as handle:
                body = handle.read()
        else:
            body = str(inputs.get("content") or "").encode()
        params = drop_none(
            Bucket=inputs["bucket"],
            Key=inputs["key"],
            Body=body,
            ContentType=inputs.get("contentType"),
            ServerSideEncryption=inputs.get("serverSideEncryption"),
            SSEKMSKeyId=inputs.get("kmsKeyId"),
            BucketKeyEnabled=inputs.get("bucketKeyEnabled"),
            Metadata=inputs.get("metadata"),
            StorageClass=inputs.get("storageClass"),
            CacheControl=inputs.get("cacheControl"),
        )
        if inputs.get("tags"):
            params["Tagging"] = "&".join(f"{t['Key']}={t['Value']}" for t in tag_list(inputs["tags"]))
        response = ctx.client("s3").put_object(**params)
        return {
            "bucket": inputs["bucket"],
            "key": inputs["key"],
            "etag": response.get("ETag", "").strip('"'),
            "versionId": response.get("VersionId"),
            "arn": f"arn:aws:s3:::{inputs['bucket']}/{inputs['key']}",
        }

    def create(self, ctx: Context, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return inputs["key"], self._put(ctx, inputs)

    def update(self, ctx: Context, id_: str, old: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        return self._put(ctx, inputs)

    def delete(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> None:
        # As the provider does: every version of the key goes, so a versioned bucket can empty.
        _purge(ctx.client("s3"), outputs["bucket"], prefix="", exact_key=outputs["key"])

    def exists(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> bool:
        ctx.client("s3").head_object(Bucket=outputs["bucket"], Key=outputs["key"])
        return True

    def label(self, id_: str, outputs: dict[str, Any]) -> str:
        return f"s3://{outputs.get('bucket')}/{outputs.get('key')}"


@handler
class BucketMetric(_BucketSetting):
    """moto has no S3 metrics-configuration API: the request is validated against the S3 API
    model and the bucket's existence is checked; the configuration is kept in the local state."""

    token = BUCKET_METRIC
    note = "not emulated by moto: request checked against the S3 API model only"

    def _params(self, bucket: str, inputs: dict[str, Any]) -> dict[str, Any]:
        config: dict[str, Any] = {"Id": inputs["name"]}
        if inputs.get("filter"):
            flt = pascal(inputs["filter"])
            if "Tags" in flt:
                tags = tag_list(flt.pop("Tags"))
                prefix = flt.pop("Prefix", None)
                flt = {"And": drop_none(Prefix=prefix, Tags=tags)} if (prefix or len(tags) > 1) else {"Tag": tags[0]}
            config["Filter"] = flt
        return {"Bucket": bucket, "Id": inputs["name"], "MetricsConfiguration": config}

    def put(self, ctx: Context, bucket: str, inputs: dict[str, Any]) -> None:
        validate_request(ctx, "s3", "PutBucketMetricsConfiguration", self._params(bucket, inputs))
        ctx.client("s3").head_bucket(Bucket=bucket)

    def create(self, ctx: Context, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        self.put(ctx, inputs["bucket"], inputs)
        return f"{inputs['bucket']}:{inputs['name']}", {"bucket": inputs["bucket"], "name": inputs["name"]}

    def update(self, ctx: Context, id_: str, old: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        self.put(ctx, inputs["bucket"], inputs)
        return {"bucket": inputs["bucket"], "name": inputs["name"]}

    def delete(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> None:
        return None  # nothing was stored in the emulator

    def exists(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> bool:
        ctx.client("s3").head_bucket(Bucket=outputs["bucket"])
        return True


# --- Glue --------------------------------------------------------------------------------------


@handler
class GlueDatabase(Handler):
    token = GLUE_DATABASE
    name_key = "name"

    def _input(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        return drop_none(
            Name=name,
            Description=inputs.get("description"),
            LocationUri=inputs.get("locationUri"),
            Parameters=inputs.get("parameters"),
        )

    def _outputs(self, ctx: Context, name: str) -> dict[str, Any]:
        return {"name": name, "arn": f"arn:aws:glue:{ctx.region}:{ctx.account}:database/{name}",
                "catalogId": ctx.account}

    def create(self, ctx: Context, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        ctx.client("glue").create_database(DatabaseInput=self._input(name, inputs))
        return f"{ctx.account}:{name}", self._outputs(ctx, name)

    def expected_id(self, ctx: Context, physical: str, inputs: dict[str, Any]) -> str:
        return f"{ctx.account}:{physical}"

    def update(self, ctx: Context, id_: str, old: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        name = id_.split(":", 1)[1]
        ctx.client("glue").update_database(Name=name, DatabaseInput=self._input(name, inputs))
        return self._outputs(ctx, name)

    def delete(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> None:
        ctx.client("glue").delete_database(Name=id_.split(":", 1)[1])

    def exists(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> bool:
        ctx.client("glue").get_database(Name=id_.split(":", 1)[1])
        return True

    def label(self, id_: str, outputs: dict[str, Any]) -> str:
        return str(outputs.get("name") or id_)


@handler
class GlueTable(Handler):
    token = GLUE_TABLE
    name_key = "name"

    def _input(self, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
        table = drop_none(
            Name=name,
            Description=inputs.get("description"),
            Owner=inputs.get("owner"),
            TableType=inputs.get("tableType"),
            Parameters=inputs.get("parameters"),
            Retention=inputs.get("retention"),
            StorageDescriptor=pascal(inputs["storageDescriptor"]) if inputs.get("storageDescriptor") else None,
            PartitionKeys=pascal(inputs.get("partitionKeys")) if inputs.get("partitionKeys") else None,
        )
        return plain(table)

    def _outputs(self, ctx: Context, database: str, name: str) -> dict[str, Any]:
        return {"name": name, "databaseName": database,
                "arn": f"arn:aws:glue:{ctx.region}:{ctx.account}:table/{database}/{name}"}

    def create(self, ctx: Context, name: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        database = inputs["databaseName"]
        ctx.client("glue").create_table(DatabaseName=database, TableInput=self._input(name, inputs))
        return f"{ctx.account}:{database}:{name}", self._outputs(ctx, database, name)

    def expected_id(self, ctx: Context, physical: str, inputs: dict[str, Any]) -> str:
        return f"{ctx.account}:{inputs['databaseName']}:{physical}"

    def update(self, ctx: Context, id_: str, old: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
        _, database, name = id_.split(":", 2)
        ctx.client("glue").update_table(DatabaseName=database, TableInput=self._input(name, inputs))
        return self._outputs(ctx, database, name)

    def delete(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> None:
        _, database, name = id_.split(":", 2)
        ctx.client("glue").delete_table(DatabaseName=database, Name=name)

    def exists(self, ctx: Context, id_: str, outputs: dict[str, Any]) -> bool:
        _, database, name = id_.split(":", 2)
        ctx.client("glue").get_table(DatabaseName=database, Name=name)
        return True

    def label(self, id_: str, outputs: dict[str, Any]) -> str:
        return f"{outputs.get('databaseName')}.{outputs.get('name')}"
