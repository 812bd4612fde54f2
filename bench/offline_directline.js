// Starts offline-directline 1.3.1 (npm), the peer the benchmark compares openline with, as its README shows:
// an express app with its routes. Usage: node offline_directline.js PORT BOT_URL
'use strict';
const directline = require('offline-directline');
const express = require('express');

const [port, botUrl] = process.argv.slice(2);
const app = express();
directline.initializeRoutes(app, Number(port), botUrl);
