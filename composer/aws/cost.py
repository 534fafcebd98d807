"""What a run costs, roughly, said before it starts: ``estimate_cost``.

Imports only ``composer.aws.settings``. The prices are a small built-in table, not a
query (the Pricing API needs its own permission and one region): AWS's published
on-demand prices for Linux in us-east-1, from https://aws.amazon.com/ec2/pricing/on-demand/
(2024). They are approximate: other regions cost up to about a third more, prices
change, and EBS volumes and data transfer are extra. Each instance's public IPv4
address (the bootstrap's subnet gives every instance one) is billed too, and counted.
An instance type not in the table is said to be unknown rather than guessed.
"""

from __future__ import annotations

from composer.aws.settings import AwsSettings

__all__ = ["estimate_cost", "HOURLY_USD", "PUBLIC_IPV4_USD", "PRICES_SOURCE"]

PRICES_SOURCE = ("AWS on-demand Linux list prices for us-east-1 "
                 "(aws.amazon.com/ec2/pricing/on-demand, 2024)")
#: US dollars per hour of a public IPv4 address (every region, since February 2024)
PUBLIC_IPV4_USD = 0.005
#: US dollars per instance-hour, on demand, Linux, us-east-1
HOURLY_USD = {
    "t3.nano": 0.0052, "t3.micro": 0.0104, "t3.small": 0.0208, "t3.medium": 0.0416,
    "t3.large": 0.0832, "t3.xlarge": 0.1664, "t3.2xlarge": 0.3328,
    "t3a.micro": 0.0094, "t3a.small": 0.0188, "t3a.medium": 0.0376, "t3a.large": 0.0752,
    "m5.large": 0.096, "m5.xlarge": 0.192, "m5.2xlarge": 0.384,
    "m6i.large": 0.096, "m6i.xlarge": 0.192, "m6i.2xlarge": 0.384,
    "m7i.large": 0.1008, "m7i.xlarge": 0.2016,
    "c5.large": 0.085, "c5.xlarge": 0.17, "c5.2xlarge": 0.34,
    "c6i.large": 0.085, "c6i.xlarge": 0.17, "c6i.2xlarge": 0.34,
    "c7i.large": 0.08925, "c7i.xlarge": 0.1785,
    "r5.large": 0.126, "r6i.large": 0.126,
}


def estimate_cost(settings: AwsSettings, count: int, hours: float) -> str:
    """Return one line saying what ``count`` instances of the settings' type cost for
    ``hours`` (at most ``max_hours``: they power off then), and how sure that is."""
    hours = min(hours, settings.max_hours)
    kind = settings.instance_type
    price = HOURLY_USD.get(kind)
    if price is None:
        return (f"{count} x {kind} for {hours:g} h: no price known for {kind} (composer's table "
                f"has {len(HOURLY_USD)} common types, e.g. t3.small, m6i.large, c6i.large); see "
                "https://aws.amazon.com/ec2/pricing/on-demand/")
    total = (price + PUBLIC_IPV4_USD) * count * hours
    return (f"{count} x {kind} for {hours:g} h: about ${total:.2f} (${price:g}/h each and "
            f"${PUBLIC_IPV4_USD:g}/h for its public IPv4 address; {PRICES_SOURCE}; "
            "approximate: other regions cost up to ~30% more, EBS and data transfer are "
            "extra, and a run that ends early costs less)")
