"""The production store: MongoDB through PyMongo's AsyncMongoClient."""
