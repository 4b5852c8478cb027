/*! cookiebridge web-engagement | MIT */
// Web Engagement context for a media widget (the guide's proactive invitation → GMS chat widget hand-over).
// Invitation side: getIds() asks the Monitoring JS API (_gt) for visitID and pageID, openWidget() opens the media
// widget with them and the scenario in its URL. Widget side: readFromLocation() reads them back and attachedData()
// turns them into the attached data for the media server. Nothing here throws into the page or rejects.
(function (window) {
  'use strict';
  if (window.WebEngagementContext && window.WebEngagementContext.cookiebridge) return;
  var DEFAULT_TIMEOUT = 2000;
  var DEFAULT_SCENARIO = 'CHAT-NOW';
  // The guide's URL parameter names, so a widget page adapted from its sample reads the same URL.
  var PARAMS = { visitID: 'visitId', pageID: 'pageId', scenario: 'gmsScenario' };
  var MAX_ID = 256;
  // Control characters (C0, DEL, C1), line/paragraph separators, U+FFFD (what a decoder makes of invalid UTF-8)
  // and unpaired surrogates never make it into attached data.
  var FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\ufffd]|[\ud800-\udbff](?![\udc00-\udfff])|(^|[^\ud800-\udbff])[\udc00-\udfff]/;
  var SCENARIO = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

  function warn(message) {
    if (window.console && console.warn) console.warn('cookiebridge web-engagement: ' + message);
  }

  // An id as carried: any printable text, exactly as given (no trimming), 1 to 256 characters; otherwise null.
  function validId(value) {
    if (typeof value === 'number' && isFinite(value)) value = String(value);
    if (typeof value !== 'string' || !value.length || value.length > MAX_ID) return null;
    if (FORBIDDEN.test(value) || !/\S/.test(value)) return null;
    return value;
  }

  function validScenario(value) {
    return typeof value === 'string' && SCENARIO.test(value) ? value : DEFAULT_SCENARIO;
  }

  function idsFrom(raw) {
    if (!raw || typeof raw !== 'object') return null;
    var visitID = validId(raw.visitID !== undefined ? raw.visitID : raw.visitId);
    var pageID = validId(raw.pageID !== undefined ? raw.pageID : raw.pageId);
    return visitID && pageID ? { visitID: visitID, pageID: pageID } : null;
  }

  // Resolves { visitID, pageID } from _gt.push(['getIDs', callback]), or null after timeoutMs (default 2000) when
  // the Monitoring agent is absent, silent or answers nonsense. Before the agent has loaded, _gt is its command
  // queue (an array it drains once loaded), so an absent _gt becomes that queue.
  function getIds(timeoutMs) {
    var timeout = timeoutMs > 0 ? +timeoutMs : DEFAULT_TIMEOUT;
    return new Promise(function (resolve) {
      var settled = false;
      var timer = setTimeout(function () {
        settle(null);
      }, timeout);
      function settle(value) {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(value);
      }
      try {
        if (window._gt == null) window._gt = [];
        if (typeof window._gt.push !== 'function') return settle(null);
        window._gt.push(['getIDs', function (ids) {
          settle(idsFrom(ids));
        }]);
      } catch (e) {
        warn('_gt.push failed: ' + e);
        settle(null);
      }
    });
  }

  // The media widget's URL with the ids (when valid) and the scenario in its query, other parameters kept; null
  // when base is not a URL.
  function buildWidgetUrl(base, ids, scenario) {
    var url;
    try {
      url = new URL(base, window.location.href);
    } catch (e) {
      warn('the widget URL ' + JSON.stringify(String(base)) + ' is not a URL');
      return null;
    }
    var valid = idsFrom(ids);
    url.searchParams.delete(PARAMS.visitID);
    url.searchParams.delete(PARAMS.pageID);
    if (valid) {
      url.searchParams.set(PARAMS.visitID, valid.visitID);
      url.searchParams.set(PARAMS.pageID, valid.pageID);
    }
    url.searchParams.set(PARAMS.scenario, validScenario(scenario));
    return url.href;
  }

  /**
   * openWidget(base, options) → Promise of { url, ids, window | frame, blocked }.
   * options: { scenario ('CHAT-NOW'), timeout (ms for getIds), frame: an <iframe> to load the widget in (otherwise a
   * pop-up), name, features: for window.open }. Call it from the click that accepts the invitation: the pop-up
   * opens at once (browsers block pop-ups opened later) and is sent to the widget URL once the ids are known.
   */
  function openWidget(base, options) {
    var opts = options || {}, frame = opts.frame, popup = null;
    if (!frame) {
      try {
        popup = window.open('about:blank', opts.name || 'media-widget', opts.features || 'width=420,height=640');
        if (popup) popup.opener = null; // the widget page gets no handle on the page that opened it
      } catch (e) {
        popup = null;
      }
    }
    return getIds(opts.timeout).then(function (ids) {
      var result = { url: buildWidgetUrl(base, ids, opts.scenario), ids: ids, blocked: false };
      try {
        if (!result.url) {
          if (popup) popup.close();
        } else if (frame) {
          frame.src = result.url;
          result.frame = frame;
        } else if (popup && !popup.closed) {
          popup.location.replace(result.url);
          result.window = popup;
        } else {
          result.blocked = true;
          warn('no pop-up (blocked or closed); open the widget from the click that accepts the invitation');
        }
      } catch (e) {
        warn('could not load the widget: ' + e);
      }
      return result;
    });
  }

  // Widget side: { visitID, pageID, scenario, engaged } from a query string (default: this page's). Missing or
  // invalid ids are null (engaged is false: no Web Engagement context); the scenario defaults to 'CHAT-NOW'.
  function readFromLocation(search) {
    var params;
    try {
      params = new URLSearchParams(typeof search === 'string' ? search : window.location.search);
    } catch (e) {
      params = new URLSearchParams('');
    }
    var ids = idsFrom({ visitID: params.get(PARAMS.visitID), pageID: params.get(PARAMS.pageID) });
    return {
      visitID: ids && ids.visitID,
      pageID: ids && ids.pageID,
      scenario: validScenario(params.get(PARAMS.scenario)),
      engaged: !!ids
    };
  }

  // The attached data for the media server: visitID, pageID and the webengagement key (any string marks the
  // interaction as proactively created; '' by default). Without valid ids: {} (not a Web Engagement interaction).
  function attachedData(context, marker) {
    var ids = idsFrom(context);
    if (!ids) return {};
    return { visitID: ids.visitID, pageID: ids.pageID, webengagement: typeof marker === 'string' ? marker : '' };
  }

  window.WebEngagementContext = {
    cookiebridge: 1,
    DEFAULT_SCENARIO: DEFAULT_SCENARIO,
    PARAMS: PARAMS,
    getIds: getIds,
    buildWidgetUrl: buildWidgetUrl,
    openWidget: openWidget,
    readFromLocation: readFromLocation,
    attachedData: attachedData
  };
})(window);
