"""After the incident: satisfaction, the review draft, action items, KPIs, the weekly report and its chart."""
