"""The AWS side of the ``aws`` backend: settings, the account's bootstrap, a run's
instances, their cost and their garbage collection.

Needs boto3 (``pip install 'composer-dst[aws]'``) only when a function talks to AWS;
importing this package does not. Knows nothing of clusters, timelines or the search:
the ``aws`` cluster backend is built on top of it. Every function takes an
``AwsSettings`` (``load()`` reads flags and ``COMPOSER_AWS_*``) and an optional ``aws``
connection (``connect(settings)``) to share one session.
"""

from composer.aws.bootstrap import Status, bootstrap, status, teardown
from composer.aws.cost import estimate_cost
from composer.aws.gc import collect
from composer.aws.instances import Instance, Tagged, composer_instances, launch, terminate
from composer.aws.resources import Resources
from composer.aws.session import Aws, CredentialsError, connect
from composer.aws.settings import AwsSettings, load

__all__ = ["AwsSettings", "load", "Aws", "connect", "CredentialsError", "Resources", "Status",
           "bootstrap", "status", "teardown", "Instance", "Tagged", "launch", "terminate",
           "composer_instances", "estimate_cost", "collect"]
