"""SageMaker scikit-learn serving images: registry account per region and framework version.

Source: ``sagemaker/core/image_uri_config/sklearn.json`` in the ``sagemaker-core`` 2.27.0 wheel
(PyPI), the data the SageMaker Python SDK itself uses to build image URIs. Regenerate this
table from a newer wheel when AWS publishes a new framework version.

The image framework version must match the scikit-learn version that trained the artifact:
pickles do not load across scikit-learn minor versions.
"""

from __future__ import annotations

REPOSITORY = "sagemaker-scikit-learn"

#: framework version tag -> scikit-learn major.minor it serves
FRAMEWORK_SKLEARN: dict[str, str] = {
    "0.20.0": "0.20",
    "0.23-1": "0.23",
    "1.0-1": "1.0",
    "1.2-1": "1.2",
    "1.4-2-py312": "1.4",
    "1.9-0": "1.9",
}

#: region -> AWS account that hosts the serving image registry
# (identical for every framework version in the source data)
REGISTRY_ACCOUNT: dict[str, str] = {
    "af-south-1": "510948584623",
    "ap-east-1": "651117190479",
    "ap-northeast-1": "354813040037",
    "ap-northeast-2": "366743142698",
    "ap-northeast-3": "867004704886",
    "ap-south-1": "720646828776",
    "ap-south-2": "628508329040",
    "ap-southeast-1": "121021644041",
    "ap-southeast-2": "783357654285",
    "ap-southeast-3": "951798379941",
    "ap-southeast-4": "106583098589",
    "ca-central-1": "341280168497",
    "ca-west-1": "190319476487",
    "cn-north-1": "450853457545",
    "cn-northwest-1": "451049120500",
    "eu-central-1": "492215442770",
    "eu-central-2": "680994064768",
    "eu-north-1": "662702820516",
    "eu-south-1": "978288397137",
    "eu-south-2": "104374241257",
    "eu-west-1": "141502667606",
    "eu-west-2": "764974769150",
    "eu-west-3": "659782779980",
    "il-central-1": "898809789911",
    "me-central-1": "272398656194",
    "me-south-1": "801668240914",
    "sa-east-1": "737474898029",
    "us-east-1": "683313688378",
    "us-east-2": "257758044811",
    "us-gov-east-1": "237065988967",
    "us-gov-west-1": "414596584902",
    "us-iso-east-1": "833128469047",
    "us-isob-east-1": "281123927165",
    "us-isof-east-1": "108575199400",
    "us-isof-south-1": "124985052026",
    "us-west-1": "746614075791",
    "us-west-2": "246618743249",
}


#: the image every monitor job runs on, whatever framework version its model serves with:
#: the job reads the card and baseline JSON, never the pickle, so it needs no match with
#: the model's scikit-learn, and one pinned image is one set of libraries to test against
PROCESSING_FRAMEWORK = "1.9-0"

#: what that image's Python has (distribution name -> version): ``python`` is the
#: interpreter's major.minor; the rest are pinned in ``docker/sklearn/1.9-0/pyproject.toml``
#: and ``uv.lock`` of aws/deep-learning-containers (commit e0ecedea, 2026-08-21), which
#: builds the ``1.9-0`` image. ``tests/ml/test_processing_image.py`` checks the job
#: imports nothing else and docs/monitoring.md lists where our venv differs.
PROCESSING_LIBRARIES: dict[str, str] = {
    "python": "3.12",
    "numpy": "2.5.1",
    "scipy": "1.18.0",
    "pandas": "2.2.3",
    "scikit-learn": "1.9.0",
    "pyarrow": "25.0.0",
    "joblib": "1.5.3",
    "threadpoolctl": "3.6.0",
    "boto3": "1.43.46",
    "botocore": "1.43.47",
}

#: import name -> distribution name, for the libraries above whose names differ
PROCESSING_IMPORTS: dict[str, str] = {"sklearn": "scikit-learn"}


def processing_image_uri(region: str) -> str:
    """The monitor jobs' processing image, e.g. ``processing_image_uri("eu-west-1")``.

    >>> processing_image_uri("eu-west-1")
    '141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3'
    """
    return image_uri(region, PROCESSING_FRAMEWORK)


def image_uri(region: str, framework_version: str) -> str:
    """The serving image URI, e.g. ``image_uri("eu-west-1", "1.9-0")``.

    >>> image_uri("eu-west-1", "1.9-0")
    '141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3'
    """
    account = REGISTRY_ACCOUNT[region]
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"{account}.dkr.ecr.{region}.{suffix}/{REPOSITORY}:{framework_version}-cpu-py3"


def framework_for_sklearn(sklearn_version: str) -> str | None:
    """The framework version serving artifacts trained with ``sklearn_version`` (``"1.9.1"`` -> ``"1.9-0"``)."""
    major_minor = ".".join(sklearn_version.split(".")[:2])
    for framework, served in FRAMEWORK_SKLEARN.items():
        if served == major_minor:
            return framework
    return None
