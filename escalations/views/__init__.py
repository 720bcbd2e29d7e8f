"""The views of escalations, one module per screen: the supervisor's board,
the customer's notice, the appeal reviewer's page, data-subject access."""
