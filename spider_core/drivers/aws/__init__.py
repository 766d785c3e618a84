"""The AWS driver (boto3). The MOCK provider (``mock_driver``) runs these same handlers on moto."""

from spider_core.drivers.aws.driver import AwsDriver

__all__ = ["AwsDriver"]
