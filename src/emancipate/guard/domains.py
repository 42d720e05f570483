"""Built-in topic domains: keyword lists, English and French.

A domain is detected when a request mentions at least `min_hits` distinct keywords of it
(default 2): one word like "search" or "cloud" alone says little, two specific phrases say
what the request is about. Keywords are matched like confidential terms (case- and
accent-insensitive, on word boundaries). Operators extend or replace these lists in
`guard.domains`.
"""

from __future__ import annotations

BUILTIN_DOMAINS: dict[str, tuple[str, ...]] = {
    "search": (
        "search engine", "search engines", "search ranking", "search results",
        "search quality", "search query", "search queries", "search index", "web search",
        "ranking algorithm", "ranking signals", "ranking model", "learning to rank",
        "relevance ranking", "relevance score", "query understanding", "query rewriting",
        "query expansion", "query autocomplete", "web index", "web crawler", "crawler",
        "crawling", "inverted index", "pagerank", "serp", "bm25", "reranker", "re-ranking",
        "reranking", "semantic search", "vector search", "retrieval", "indexing pipeline",
        "moteur de recherche", "moteurs de recherche", "resultats de recherche",
        "requete de recherche", "requetes de recherche", "robot d'indexation",
        "indexation", "classement des resultats", "algorithme de classement",
        "pertinence des resultats", "recherche semantique", "index inverse",
    ),
    "advertising": (
        "advertising", "advertiser", "advertisers", "ad auction", "ad auctions",
        "ad campaign", "ad campaigns", "ad targeting", "ad inventory", "ad exchange",
        "ad network", "ad revenue", "ad spend", "programmatic", "real-time bidding",
        "rtb", "cpm", "cpc", "cost per click", "cost per mille", "click-through rate",
        "ctr", "conversion rate", "demand-side platform", "supply-side platform",
        "retargeting", "lookalike audience", "lookalike audiences", "attribution model",
        "sponsored results", "publicite", "publicitaire", "publicitaires", "annonceur",
        "annonceurs", "campagne publicitaire", "campagnes publicitaires",
        "encheres publicitaires", "ciblage publicitaire", "cout par clic", "taux de clic",
        "regie publicitaire", "taux de conversion", "reciblage",
    ),
    "cloud": (
        "cloud provider", "cloud providers", "public cloud", "hyperscaler", "hyperscalers",
        "iaas", "paas", "kubernetes", "virtual machine", "virtual machines",
        "compute instances", "gpu instances", "object storage", "s3 bucket",
        "data center", "data centers", "datacenter", "datacenters", "autoscaling",
        "serverless", "load balancer", "availability zone", "availability zones",
        "egress fees", "managed database", "cloud region", "cloud regions",
        "fournisseur cloud", "cloud souverain", "informatique en nuage",
        "centre de donnees", "centres de donnees", "machines virtuelles",
        "machine virtuelle", "stockage objet", "hebergeur", "hebergement cloud",
        "zone de disponibilite", "equilibreur de charge",
    ),
}
